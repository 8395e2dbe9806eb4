"""NVIDIA GPU energy through NVML (``nvidia-ml-py``, NVIDIA's own binding), for one GPU.

Volta and newer GPUs keep a total-energy counter (mJ since the driver loaded): the window's energy is
the difference of two reads, nothing is sampled. Older GPUs only report instantaneous board power; then a
thread samples it every ``SAMPLE_PERIOD_S`` over the window and integrates (trapezoids), and the record
says at what period. The GPU is ``HWNAS_NVML_DEVICE`` (index, default 0).
"""

from __future__ import annotations

import importlib.util
import os
import time

from hwnas.device_agent.power.base import Availability, EnergyReading, PowerMeter, PowerSource
from hwnas.device_agent.power.sampling import SampledMeter

SAMPLE_PERIOD_S = 0.02


def _nvml():
    import pynvml

    return pynvml


class _CounterMeter(PowerMeter):
    def __init__(self, nvml, handle, label: str) -> None:
        self._nvml, self._handle, self._label = nvml, handle, label
        self._e0_mj = 0
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._e0_mj = self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)

    def poll(self) -> None:
        """A 64-bit millijoule counter does not wrap within any measurement."""

    def stop(self) -> EnergyReading:
        e1_mj = self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        return EnergyReading(source=f"nvml:{self._label}", window_s=time.perf_counter() - self._t0,
                             energy_j=(e1_mj - self._e0_mj) / 1e3)


class NvmlSource(PowerSource):
    name = "nvml"

    def __init__(self, index: int | None = None) -> None:
        self.index = int(os.environ.get("HWNAS_NVML_DEVICE", "0")) if index is None else index
        self._handle = None
        self._counter = False
        self._label = ""

    def probe(self) -> Availability:
        if importlib.util.find_spec("pynvml") is None:
            return Availability(False, "nvidia-ml-py is not installed (pip install 'hwnas[agent-gpu]')")
        nvml = _nvml()
        try:
            nvml.nvmlInit()
            count = nvml.nvmlDeviceGetCount()
            if self.index >= count:
                return Availability(False, f"NVML sees {count} GPU(s); HWNAS_NVML_DEVICE={self.index} is not one")
            self._handle = nvml.nvmlDeviceGetHandleByIndex(self.index)
            name = nvml.nvmlDeviceGetName(self._handle)
        except nvml.NVMLError as exc:
            return Availability(False, f"NVML: {exc} (no NVIDIA driver or GPU?)")
        self._label = f"{self.index}:{name.decode() if isinstance(name, bytes) else name}"
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
            self._counter = True
            how = "total-energy counter"
        except nvml.NVMLError:  # pre-Volta: only instantaneous power
            self._counter = False
            how = f"board power sampled every {SAMPLE_PERIOD_S * 1e3:g} ms"
        return Availability(True, f"GPU {self._label}, {how}")

    def open(self) -> PowerMeter:
        nvml, handle = _nvml(), self._handle
        if self._counter:
            return _CounterMeter(nvml, handle, self._label)
        return SampledMeter(lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1e3, f"nvml:{self._label}",
                            SAMPLE_PERIOD_S)
