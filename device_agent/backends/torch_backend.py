"""PyTorch, eager or ``torch.compile``d, on the CPU or a CUDA GPU.

The network is rebuilt from the ONNX bytes (``onnx_torch``), never unpickled. On CUDA, inputs live on the
GPU and each inference is timed by CUDA events recorded around it on the current stream, read after the end
event has synchronised, so the figure is the GPU's time, not the launch time. torch and onnx are imported
only when this backend is enabled.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hwnas.device_agent.backends.base import Backend, InputSpec, LoadedModel
from hwnas.device_agent.backends.common import first_line, installed_version, missing_modules, random_input
from hwnas.device_agent.errors import InvalidInput
from hwnas.device_agent.host import physical_cores
from hwnas.device_agent.power.base import Availability


class TorchModel(LoadedModel):
    def __init__(self, module, inputs: list[InputSpec], device: str, threads: int,
                 output_names: list[str], eager=None) -> None:
        self._module = module
        self._eager = eager  # the OnnxModule itself, where it runs eagerly on the CPU: what op profiles read
        self._inputs = inputs
        self._output_names = output_names
        self._device = device
        self.threads = threads

    @property
    def inputs(self) -> list[InputSpec]:
        return list(self._inputs)

    def bind(self, shapes: dict[str, tuple[int, ...]]) -> Callable[[], int | None]:
        import numpy as np
        import torch

        rng = np.random.default_rng(0)
        xs = [torch.from_numpy(random_input(tuple(shapes[s.name]), s.dtype, rng)).to(self._device)
              for s in self._inputs]
        module = self._module
        try:
            with torch.inference_mode():
                module(*xs)  # one untimed call surfaces shape errors (and compiles, under torch.compile)
        except (RuntimeError, ValueError) as exc:
            raise InvalidInput(f"PyTorch rejected the inputs {dict(shapes)}: {first_line(exc)}") from exc
        if not self._device.startswith("cuda"):
            def run_once() -> None:
                with torch.inference_mode():
                    module(*xs)

            return run_once
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(self._device)

        def run_cuda() -> int:
            with torch.inference_mode():
                start.record()
                module(*xs)
                end.record()
            end.synchronize()
            return round(start.elapsed_time(end) * 1e6)  # ms -> ns

        return run_cuda

    @property
    def keeps_op_profile(self) -> str:
        """Eager CPU runs only: a compiled graph no longer runs node by node, and a CUDA node's CPU time is
        its launch, not its work."""
        if self._eager is None:
            return ("the torch backend keeps a per-op profile of eager CPU runs only; this agent runs "
                    f"{'torch.compile' if self._device == 'cpu' else self._device}")
        return ""

    def op_times(self, shapes: dict[str, tuple[int, ...]], runs: int) -> list[tuple[str, str, float]] | None:
        """``torch.profiler``'s CPU time per ONNX node (``OnnxModule.op_times``)."""
        import numpy as np
        import torch

        rng = np.random.default_rng(0)
        xs = [torch.from_numpy(random_input(tuple(shapes[s.name]), s.dtype, rng)) for s in self._inputs]
        return self._eager.op_times(xs, runs)

    def outputs(self, feed):
        import numpy as np
        import torch

        with torch.inference_mode():
            out = self._module(*(torch.from_numpy(np.asarray(feed[s.name])).to(self._device) for s in self._inputs))
        values = out if isinstance(out, tuple) else (out,)
        return {name: value.detach().cpu().numpy() for name, value in zip(self._output_names, values, strict=True)}


class TorchBackend(Backend):
    name = "torch"
    runtime_modules = ("torch", "onnx", "numpy")
    runtime_name = "pytorch"

    def __init__(self, device: str = "cpu", compile: str = "false") -> None:  # noqa: A002 - the flag's name
        import torch

        self.device = device
        self.compile = compile.lower() in ("1", "true", "yes")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError("--torch-device cuda, but PyTorch sees no CUDA GPU")
        if not (device == "cpu" or device.startswith("cuda")):
            raise RuntimeError(f"--torch-device must be cpu, cuda or cuda:N, got {device!r}")

    @classmethod
    def probe(cls) -> Availability:
        return missing_modules(("torch", "onnx"), "agent-torch") or Availability(
            True, f"torch {installed_version('torch')} eager or torch.compile, CPU or CUDA")

    @classmethod
    def runtime_version(cls) -> str:
        return installed_version("torch")

    def load(self, model_path: Path, threads: int) -> TorchModel:
        import torch

        from hwnas.device_agent.backends.onnx_torch import load_onnx_module

        module = load_onnx_module(model_path.read_bytes())
        inputs, output_names = module.input_specs, list(module.output_names)
        threads = threads or physical_cores()
        torch.set_num_threads(threads)
        module = module.to(self.device)
        eager = module if self.device == "cpu" and not self.compile else None
        if self.compile:
            module = torch.compile(module)
        return TorchModel(module, inputs, self.device, threads, output_names, eager)
