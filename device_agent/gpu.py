"""The state of an NVIDIA GPU on the agent's host, through NVML, where one is readable.

What a record needs to be trusted: the SM clock and temperature when the measurement started, and whether
the GPU throttled during the timed window (NVML's cumulative violation time for the power and thermal
policies grew). The GPU is ``HWNAS_NVML_DEVICE`` (index, default 0), as for the NVML power source. A host
without ``nvidia-ml-py``, a driver or a GPU reads as no GPU: empty name, zero clock and temperature.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from dataclasses import dataclass
from typing import Any

# NVML perf policies whose violation time counts throttling (nvmlPerfPolicyType_t).
_POLICIES = {"power": 0, "thermal": 1}


@dataclass(frozen=True)
class Nvml:
    lib: Any  # the pynvml module
    handle: Any
    name: str


@functools.cache
def nvml() -> Nvml | None:
    """NVML and the agent's GPU, initialised once; None where there is none."""
    if importlib.util.find_spec("pynvml") is None:
        return None
    import pynvml

    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(int(os.environ.get("HWNAS_NVML_DEVICE", "0")))
        name = pynvml.nvmlDeviceGetName(handle)
    except (pynvml.NVMLError, ValueError):
        return None
    return Nvml(pynvml, handle, name.decode() if isinstance(name, bytes) else name)


def gpu_state() -> tuple[str, float, float]:
    """(GPU name, SM clock MHz, temperature C); ('', 0, 0) without a readable GPU."""
    gpu = nvml()
    if gpu is None:
        return "", 0.0, 0.0
    lib = gpu.lib
    try:
        clock = float(lib.nvmlDeviceGetClockInfo(gpu.handle, lib.NVML_CLOCK_SM))
        temperature = float(lib.nvmlDeviceGetTemperature(gpu.handle, lib.NVML_TEMPERATURE_GPU))
    except lib.NVMLError:
        return gpu.name, 0.0, 0.0
    return gpu.name, clock, temperature


def violation_ns() -> dict[str, int]:
    """Cumulative time (ns) the GPU was held below its clocks, per policy; {} without a readable GPU."""
    gpu = nvml()
    if gpu is None:
        return {}
    times = {}
    for policy, code in _POLICIES.items():
        try:
            times[policy] = int(gpu.lib.nvmlDeviceGetViolationStatus(gpu.handle, code).violationTime)
        except gpu.lib.NVMLError:  # not supported on this GPU
            continue
    return times
