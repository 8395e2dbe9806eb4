"""ONNX Runtime on the CPU execution provider, and on the CUDA one where onnxruntime-gpu is installed."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hwnas.device_agent.backends.base import Backend, InputSpec, LoadedModel
from hwnas.device_agent.backends.common import first_line, installed_version, random_input
from hwnas.device_agent.errors import InvalidInput
from hwnas.device_agent.host import physical_cores
from hwnas.device_agent.power.base import Availability

# ONNX tensor type strings -> numpy dtypes for random inputs.
_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


class OrtLoadedModel(LoadedModel):
    def __init__(self, session, threads: int) -> None:  # session: onnxruntime.InferenceSession
        import onnxruntime as ort

        self._ort = ort
        self._session = session
        self._run_options = ort.RunOptions()
        self.threads = threads
        self._inputs = []
        for arg in session.get_inputs():
            if arg.type not in _ORT_TYPES:
                raise InvalidInput(f"input {arg.name!r} has unsupported type {arg.type}")
            dims = tuple(d if isinstance(d, int) and d > 0 else None for d in arg.shape)
            self._inputs.append(InputSpec(arg.name, dims, _ORT_TYPES[arg.type]))
        self._outputs = [o.name for o in session.get_outputs()]

    @property
    def inputs(self) -> list[InputSpec]:
        return list(self._inputs)

    def bind(self, shapes: dict[str, tuple[int, ...]]) -> Callable[[], None]:
        rng = np.random.default_rng(0)
        feed = {spec.name: random_input(shapes[spec.name], spec.dtype, rng) for spec in self._inputs}
        run_options, session, outputs = self._run_options, self._session, self._outputs
        try:
            session.run(outputs, feed, run_options)  # one untimed call surfaces shape errors now
        except Exception as exc:
            raise InvalidInput(f"onnxruntime rejected the inputs {dict(shapes)}: {first_line(exc)}") from exc

        def run_once() -> None:
            session.run(outputs, feed, run_options)

        return run_once

    def outputs(self, feed):
        return dict(zip(self._outputs, self._session.run(self._outputs, dict(feed)), strict=True))

    def op_times(self, shapes: dict[str, tuple[int, ...]], runs: int) -> list[tuple[str, str, float]] | None:
        """onnxruntime's profiler (``enable_profiling``) on a session of its own: each node's kernel time."""
        if self.onnx_path is None:
            return None
        import json
        import tempfile

        ort = self._ort
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = self.threads, 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        options.enable_profiling = True
        rng = np.random.default_rng(0)
        feed = {spec.name: random_input(shapes[spec.name], spec.dtype, rng) for spec in self._inputs}
        with tempfile.TemporaryDirectory(prefix="hwnas-ort-profile-") as folder:
            options.profile_file_prefix = str(Path(folder) / "ort")
            session = ort.InferenceSession(str(self.onnx_path), options, providers=self._session.get_providers())
            for _ in range(runs + 1):
                session.run(self._outputs, feed)
            events = json.loads(Path(session.end_profiling()).read_text())
        times: dict[str, tuple[str, list[float]]] = {}
        for event in events:
            name = event.get("name", "")
            if event.get("cat") == "Node" and name.endswith("_kernel_time"):
                op = event.get("args", {}).get("op_name", "")
                times.setdefault(name.removesuffix("_kernel_time"), (op, []))[1].append(event.get("dur", 0) / 1e3)
        # each node's first run allocates: its mean over the later ones (microseconds -> ms)
        return [(node, op, sum(ms[1:]) / len(ms[1:])) for node, (op, ms) in times.items() if len(ms) > 1]

    def rearm(self) -> Callable[[], None]:
        options = self._run_options = self._ort.RunOptions()  # an earlier abort left terminate set on the old one

        def abort() -> None:
            options.terminate = True  # this measurement's runs only

        return abort


class OrtCudaLoadedModel(OrtLoadedModel):
    """Inputs and outputs stay on the GPU (I/O binding): the timed call spans GPU work, no host copies."""

    def bind(self, shapes: dict[str, tuple[int, ...]]) -> Callable[[], None]:
        ort, session = self._ort, self._session
        rng = np.random.default_rng(0)
        binding = session.io_binding()
        for spec in self._inputs:
            value = random_input(shapes[spec.name], spec.dtype, rng)
            binding.bind_ortvalue_input(spec.name, ort.OrtValue.ortvalue_from_numpy(value, "cuda", 0))
        for name in self._outputs:
            binding.bind_output(name, "cuda", 0)
        run_options = self._run_options

        def run_once() -> None:
            session.run_with_iobinding(binding, run_options)
            binding.synchronize_outputs()  # the call returns when the GPU has finished

        try:
            run_once()
        except Exception as exc:
            raise InvalidInput(f"onnxruntime (CUDA) rejected the inputs {dict(shapes)}: {first_line(exc)}") from exc
        return run_once


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    runtime_name = "onnxruntime"
    runtime_modules = ("onnxruntime", "numpy")
    providers: tuple[str, ...] = ("CPUExecutionProvider",)
    loaded_model = OrtLoadedModel

    @classmethod
    def probe(cls) -> Availability:
        if importlib.util.find_spec("onnxruntime") is None:
            return Availability(False, "onnxruntime is not installed (pip install onnxruntime)")
        return Availability(True, f"onnxruntime {cls.runtime_version()} CPUExecutionProvider")

    @classmethod
    def runtime_version(cls) -> str:
        return installed_version("onnxruntime")

    def load(self, model_path: Path, threads: int) -> OrtLoadedModel:
        import onnxruntime as ort
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0 lets onnxruntime pick (one per physical core)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(str(model_path), options, providers=list(self.providers))
        except ort_state.InvalidProtobuf as exc:
            raise InvalidInput(f"model bytes are not an ONNX model: {first_line(exc)}") from exc
        except Exception as exc:
            raise InvalidInput(f"onnxruntime refused the model: {first_line(exc)}") from exc
        # onnxruntime's default intra-op pool has one thread per physical core.
        loaded = self.loaded_model(session, threads or physical_cores())
        loaded.onnx_path = model_path
        return loaded


class OnnxRuntimeCudaBackend(OnnxRuntimeBackend):
    """The CUDA execution provider on GPU 0 (choose the GPU with CUDA_VISIBLE_DEVICES); CPU for what CUDA lacks."""

    name = "onnxruntime-cuda"
    runtime_name = "onnxruntime-cuda"
    providers = ("CUDAExecutionProvider", "CPUExecutionProvider")
    loaded_model = OrtCudaLoadedModel

    @classmethod
    def probe(cls) -> Availability:
        base = OnnxRuntimeBackend.probe()
        if not base.available:
            return base
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return Availability(False, "this onnxruntime has no CUDAExecutionProvider (pip install onnxruntime-gpu "
                                       "in place of onnxruntime)")
        return Availability(True, f"onnxruntime {cls.runtime_version()} CUDAExecutionProvider")

    @classmethod
    def runtime_version(cls) -> str:
        return installed_version("onnxruntime-gpu") or installed_version("onnxruntime")
