"""LiteRT (TFLite) on the CPU, and on a Coral Edge TPU through its delegate.

The interpreter comes from ``ai_edge_litert`` (the maintained successor of ``tflite_runtime``), or from
``tflite_runtime`` where only that is installed (older boards). Both have the same ``Interpreter`` API. The
Edge TPU backend is the same interpreter with ``libedgetpu``'s delegate; it needs a model compiled by
``edgetpu_compiler`` and is advertised only where the library is found. Per-op profiles come from LiteRT's
own profiler (``litert_profile``), on the CPU only.
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hwnas.device_agent.backends import litert_profile
from hwnas.device_agent.backends.base import Backend, InputSpec, LoadedModel
from hwnas.device_agent.backends.common import first_line, installed_version, random_input
from hwnas.device_agent.errors import InvalidInput
from hwnas.device_agent.host import physical_cores
from hwnas.device_agent.power.base import Availability

# (import name, distribution) in order of preference.
_RUNTIMES = (("ai_edge_litert.interpreter", "ai-edge-litert"), ("tflite_runtime.interpreter", "tflite-runtime"))
_EDGETPU_LIBRARY = {"linux": "libedgetpu.so.1", "darwin": "libedgetpu.1.dylib", "win32": "edgetpu.dll"}


def _runtime() -> tuple[str, str] | None:
    """The first installed interpreter module and its distribution, without importing it."""
    for module, distribution in _RUNTIMES:
        if importlib.util.find_spec(module.partition(".")[0]) is not None:
            return module, distribution
    return None


def _interpreter_module():
    import importlib

    found = _runtime()
    if found is None:
        raise InvalidInput("no LiteRT runtime: pip install ai-edge-litert (or tflite-runtime on older boards)")
    return importlib.import_module(found[0])


class LiteRtModel(LoadedModel):
    def __init__(self, interpreter, threads: int, model_path: Path, delegated: bool) -> None:
        self._interpreter = interpreter
        self.threads = threads
        self._model_path = model_path
        self._delegated = delegated
        self._details = interpreter.get_input_details()
        self._inputs = [InputSpec(d["name"], tuple(int(x) for x in d["shape"]), np.dtype(d["dtype"]).name)
                        for d in self._details]

    @property
    def inputs(self) -> list[InputSpec]:
        return list(self._inputs)

    def bind(self, shapes: dict[str, tuple[int, ...]]) -> Callable[[], None]:
        interpreter = self._interpreter
        rng = np.random.default_rng(0)
        try:
            for spec, detail in zip(self._inputs, self._details, strict=True):
                if tuple(shapes[spec.name]) != spec.dims:
                    interpreter.resize_tensor_input(detail["index"], list(shapes[spec.name]))
            interpreter.allocate_tensors()
            for spec, detail in zip(self._inputs, self._details, strict=True):
                interpreter.set_tensor(detail["index"], random_input(tuple(shapes[spec.name]), spec.dtype, rng))
            interpreter.invoke()  # one untimed call surfaces shape errors now
        except (ValueError, RuntimeError) as exc:
            raise InvalidInput(f"LiteRT rejected the inputs {dict(shapes)}: {first_line(exc)}") from exc
        return interpreter.invoke  # inputs stay set between invocations

    @property
    def keeps_op_profile(self) -> str:
        """LiteRT's profiler runs a compiled model of its own on the CPU: a delegate's (Edge TPU) ops would be
        other kernels than the ones timed."""
        if self._delegated:
            return "LiteRT's op profile covers the CPU only; this model runs on a delegate (the Edge TPU)"
        return litert_profile.unavailable_reason()

    def op_times(self, shapes: dict[str, tuple[int, ...]], runs: int) -> list[tuple[str, str, float]]:
        return litert_profile.op_times(self._model_path, [tuple(shapes[spec.name]) for spec in self._inputs],
                                       [spec.dtype for spec in self._inputs], self.threads, runs)

    def outputs(self, feed):
        interpreter = self._interpreter
        for spec, detail in zip(self._inputs, self._details, strict=True):
            interpreter.set_tensor(detail["index"], np.asarray(feed[spec.name], dtype=spec.dtype))
        interpreter.invoke()
        return {d["name"]: np.array(interpreter.get_tensor(d["index"])) for d in interpreter.get_output_details()}


class LiteRtBackend(Backend):
    name = "litert"
    runtime_name = "litert"
    runtime_modules = ("ai_edge_litert.interpreter", "numpy")

    @classmethod
    def probe(cls) -> Availability:
        found = _runtime()
        if found is None:
            return Availability(False, "no LiteRT runtime (pip install ai-edge-litert)")
        return Availability(True, f"{found[1]} {installed_version(found[1])} CPU (XNNPACK)")

    @classmethod
    def runtime_version(cls) -> str:
        found = _runtime()
        return f"{found[1]} {installed_version(found[1])}" if found else ""

    def _delegates(self) -> list:
        return []

    def load(self, model_path: Path, threads: int) -> LiteRtModel:
        module = _interpreter_module()
        threads = threads or physical_cores()
        delegates = self._delegates()
        try:
            interpreter = module.Interpreter(model_path=str(model_path), num_threads=threads,
                                             experimental_delegates=delegates or None)
        except (ValueError, RuntimeError) as exc:
            raise InvalidInput(f"LiteRT refused the model (is it a .tflite flatbuffer?): {first_line(exc)}") from exc
        return LiteRtModel(interpreter, threads, model_path, delegated=bool(delegates))


def edgetpu_library() -> str | None:
    """The path of libedgetpu if the dynamic loader can find it."""
    name = _EDGETPU_LIBRARY.get(sys.platform, "libedgetpu.so.1")
    found = ctypes.util.find_library("edgetpu")
    if found:
        return found
    try:
        ctypes.CDLL(name)
    except OSError:
        return None
    return name


class EdgeTpuBackend(LiteRtBackend):
    name = "edgetpu"
    runtime_name = "litert+edgetpu"

    @classmethod
    def probe(cls) -> Availability:
        base = LiteRtBackend.probe()
        if not base.available:
            return base
        library = edgetpu_library()
        if library is None:
            return Availability(False, "libedgetpu is not installed (see docs/devices.md: Coral Edge TPU)")
        return Availability(True, f"{base.detail}; Edge TPU delegate {library}")

    def _delegates(self) -> list:
        library = edgetpu_library()
        if library is None:
            raise InvalidInput("libedgetpu is not installed on this host")
        try:
            return [_interpreter_module().load_delegate(library)]
        except (ValueError, RuntimeError, OSError) as exc:  # e.g. no Coral plugged in
            raise InvalidInput(f"the Edge TPU delegate did not load (is the Coral attached?): {exc}") from exc
