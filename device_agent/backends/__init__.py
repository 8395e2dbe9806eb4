"""Runtime backends, looked up by name.

The registry maps a name to ``module:Class`` so a backend's runtime (and
whatever heavy library it needs) is imported only when that backend is used.
"""

from __future__ import annotations

import importlib

from hwnas.device_agent.backends.base import Backend, InputSpec, LoadedModel
from hwnas.device_agent.errors import InvalidInput
from hwnas.device_agent.power.base import Availability

BACKENDS: dict[str, str] = {
    "onnxruntime": "hwnas.device_agent.backends.onnxruntime_backend:OnnxRuntimeBackend",
    "instant": "hwnas.device_agent.backends.instant_backend:InstantBackend",
    "replay": "hwnas.device_agent.backends.replay_backend:ReplayBackend",
    "onnxruntime-cuda": "hwnas.device_agent.backends.onnxruntime_backend:OnnxRuntimeCudaBackend",
    "litert": "hwnas.device_agent.backends.litert_backend:LiteRtBackend",
    "edgetpu": "hwnas.device_agent.backends.litert_backend:EdgeTpuBackend",
    "torch": "hwnas.device_agent.backends.torch_backend:TorchBackend",
    "simulator": "hwnas.device_agent.backends.simulator_backend:SimulatorBackend",
    "openvino": "hwnas.device_agent.backends.openvino_backend:OpenVinoBackend",
    # Vendor benchmark tools, on this host or on a device reached with --via (device_agent.tools).
    "benchmark-model": "hwnas.device_agent.tools.registry:BenchmarkModelBackend",
    "trtexec": "hwnas.device_agent.tools.registry:TrtExecBackend",
    "benchmark-app": "hwnas.device_agent.tools.registry:BenchmarkAppBackend",
    "tool": "hwnas.device_agent.tools.registry:CustomToolBackend",  # --backend tool:FILE.toml
}
TOOL_BACKENDS = ("benchmark-model", "trtexec", "benchmark-app", "tool")

__all__ = ["BACKENDS", "TOOL_BACKENDS", "Backend", "InputSpec", "LoadedModel", "backend_class", "probe_backend"]


def backend_class(name: str) -> type[Backend]:
    """The class registered under ``name`` (``tool:FILE.toml`` is the ``tool`` backend); an unknown name is
    refused naming the known ones."""
    try:
        target = BACKENDS["tool" if name.startswith("tool:") else name]
    except KeyError:
        raise InvalidInput(f"unknown backend {name!r}; known: {sorted(BACKENDS)}") from None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def probe_backend(name: str) -> Availability:
    return backend_class(name).probe()
