"""OpenVINO on an Intel CPU, iGPU or NPU: the runtime Intel lab machines run in production, and the one LINAS's
own authors measure with (DyNAS-T).

The ONNX model is read by OpenVINO's ONNX frontend and compiled for one device (``--ov-device``: only the
devices ``openvino.Core().available_devices`` reports are accepted). The performance hint (LATENCY by default:
one inference at a time, as the protocols time it) and the stream count are requested, and what the compiled
model actually uses (hint, streams, threads, inference precision) is read back into every record's
``environment.runtime_settings``, because OpenVINO may pick bf16 or f16 on hardware that has it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from hwnas.device_agent.backends.base import Backend, InputSpec, LoadedModel
from hwnas.device_agent.backends.common import first_line, installed_version, missing_modules, random_input
from hwnas.device_agent.errors import InvalidInput
from hwnas.device_agent.power.base import Availability

HINTS = ("LATENCY", "THROUGHPUT")
PRECISIONS = ("f32", "bf16", "f16")  # INFERENCE_PRECISION_HINT; unset: the device's default (bf16 on AMX/AVX512-BF16)
# What the record says of the compiled model, where the device reports it.
_READ_BACK = ("PERFORMANCE_HINT", "NUM_STREAMS", "INFERENCE_NUM_THREADS", "INFERENCE_PRECISION_HINT")


def available_devices() -> list[str]:
    import openvino as ov

    return list(ov.Core().available_devices)


class OpenVinoModel(LoadedModel):
    def __init__(self, core, model, device: str, config: dict[str, str], threads: int) -> None:
        self._core, self._model, self._device, self._config = core, model, device, config
        self.threads = threads
        self.runtime_settings = {"device": device}
        self._inputs = []
        for port in model.inputs:
            shape = port.get_partial_shape()
            dims = tuple(d.get_length() if d.is_static else None for d in shape)
            self._inputs.append(InputSpec(port.get_any_name(), dims, np.dtype(port.get_element_type().to_dtype()).name))

    @property
    def inputs(self) -> list[InputSpec]:
        return list(self._inputs)

    def bind(self, shapes: dict[str, tuple[int, ...]]) -> Callable[[], None]:
        model = self._model
        if any(None in spec.dims for spec in self._inputs):
            model = model.clone()
            model.reshape({spec.name: list(shapes[spec.name]) for spec in self._inputs})
        try:
            compiled = self._core.compile_model(model, self._device, self._config)
        except Exception as exc:
            raise InvalidInput(f"OpenVINO could not compile the model for {self._device} with inputs "
                               f"{dict(shapes)}: {first_line(exc)}") from exc
        self._read_back(compiled)
        self._compiled = compiled
        request = compiled.create_infer_request()
        rng = np.random.default_rng(0)
        for spec in self._inputs:
            request.set_tensor(spec.name, _tensor(random_input(shapes[spec.name], spec.dtype, rng)))
        try:
            request.infer()  # one untimed call surfaces shape and runtime errors now
        except Exception as exc:
            raise InvalidInput(f"OpenVINO ({self._device}) rejected the inputs {dict(shapes)}: "
                               f"{first_line(exc)}") from exc

        def run_once() -> None:  # None: the host clock around the call is the measure
            request.infer()

        return run_once

    def outputs(self, feed):
        request = self._compiled.create_infer_request()
        results = request.infer({name: _tensor(np.ascontiguousarray(value)) for name, value in feed.items()})
        return {port.get_any_name(): np.asarray(results[port]) for port in self._compiled.outputs}

    def op_times(self, shapes: dict[str, tuple[int, ...]], runs: int) -> list[tuple[str, str, float]] | None:
        """OpenVINO's performance counters (``PERF_COUNT``) on a compilation of its own: each executed node's
        real time, averaged over ``runs`` inferences."""
        model = self._model
        if any(None in spec.dims for spec in self._inputs):
            model = model.clone()
            model.reshape({spec.name: list(shapes[spec.name]) for spec in self._inputs})
        compiled = self._core.compile_model(model, self._device, {**self._config, "PERF_COUNT": "YES"})
        request = compiled.create_infer_request()
        rng = np.random.default_rng(0)
        for spec in self._inputs:
            request.set_tensor(spec.name, _tensor(random_input(shapes[spec.name], spec.dtype, rng)))
        request.infer()  # warm-up
        totals: dict[str, list] = {}
        for _ in range(runs):
            request.infer()
            for info in request.get_profiling_info():
                if str(info.status).endswith("EXECUTED") and not str(info.status).endswith("NOT_RUN"):
                    entry = totals.setdefault(info.node_name, [info.node_type, 0.0])
                    entry[1] += info.real_time.total_seconds() * 1e3
        return [(node, op, total / runs) for node, (op, total) in totals.items()]

    def _read_back(self, compiled) -> None:
        settings = {"device": self._device}
        for name in _READ_BACK:
            try:
                value = compiled.get_property(name)
            except RuntimeError:  # the device does not report it
                continue
            settings[name.lower()] = value.get_type_name() if hasattr(value, "get_type_name") else str(value)
        self.runtime_settings = settings
        threads = settings.get("inference_num_threads", "")
        if threads.isdigit() and int(threads) > 0:
            self.threads = int(threads)


def _tensor(array: np.ndarray):
    import openvino as ov

    return ov.Tensor(array)


class OpenVinoBackend(Backend):
    name = "openvino"
    runtime_modules = ("openvino", "numpy")
    runtime_name = "openvino"

    def __init__(self, device: str = "CPU", hint: str = "LATENCY", streams: str = "1", precision: str = "") -> None:
        device, hint = device.upper(), hint.upper()
        if hint not in HINTS:
            raise RuntimeError(f"--ov-hint must be one of {', '.join(h.lower() for h in HINTS)}, got {hint.lower()!r}")
        if not (streams.isdigit() and int(streams) >= 1):
            raise RuntimeError(f"--ov-streams must be a whole number >= 1, got {streams!r}")
        devices = available_devices()
        if device.partition(".")[0] not in {d.partition(".")[0] for d in devices} and device not in devices:
            raise RuntimeError(f"--ov-device {device}: OpenVINO on this host has {', '.join(devices) or 'no device'}")
        if precision and precision.lower() not in PRECISIONS:
            raise RuntimeError(f"--ov-precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.device, self.hint, self.streams, self.precision = device, hint, int(streams), precision.lower()

    @classmethod
    def probe(cls) -> Availability:
        missing = missing_modules(("openvino",), "agent-openvino")
        if missing:
            return missing
        try:
            devices = available_devices()
        except Exception as exc:  # a broken install or plugin: say so instead of failing the whole probe
            return Availability(False, f"openvino {installed_version('openvino')} failed: {first_line(exc)}")
        return Availability(True, f"openvino {installed_version('openvino')} devices: {', '.join(devices)} "
                                  f"(--ov-device)")

    @classmethod
    def runtime_version(cls) -> str:
        return installed_version("openvino")

    def load(self, model_path: Path, threads: int) -> OpenVinoModel:
        import openvino as ov

        core = ov.Core()
        try:
            model = core.read_model(str(model_path))
        except Exception as exc:
            raise InvalidInput(f"OpenVINO refused the model: {first_line(exc)}") from exc
        config = {"PERFORMANCE_HINT": self.hint, "NUM_STREAMS": str(self.streams)}
        if self.precision:
            config["INFERENCE_PRECISION_HINT"] = self.precision
        if threads > 0 and self.device.startswith("CPU"):
            config["INFERENCE_NUM_THREADS"] = str(threads)
        return OpenVinoModel(core, model, self.device, config, threads)
