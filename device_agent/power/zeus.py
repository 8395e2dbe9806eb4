"""Energy through Zeus (ml.energy's ``zeus``): NVML GPUs, RAPL CPU packages and Jetson power rails.

Why beside ``rapl`` and ``nvml``: Zeus is the maintained library for these sensors and the only one
here that reads a Jetson's INA3221 rails. It pulls pandas and scikit-learn, so it lives in the
``agent-zeus`` extra and is opt-in: probed (imported, its helper processes started) only when the agent
is started with ``--power-source zeus``, so other agents never pay for it.

One window sums what Zeus sees on this host: the agent's GPU (``HWNAS_NVML_DEVICE``, default 0), every
CPU package, and a Jetson module's input rail (or its CPU + GPU rails where the board has no input
rail). Counters (RAPL, NVML on Volta and newer) are read at both ends of the window; Zeus samples
Jetson rails in a helper process every ``JETSON_POLL_S``, which the record states as its period.
"""

from __future__ import annotations

import importlib.util
import itertools
import os

from hwnas.device_agent.power.base import Availability, EnergyReading, PowerMeter, PowerSource

# Zeus's Jetson poller waits this long for a command between power reads (zeus.device.soc.jetson).
JETSON_POLL_S = 0.1
INSTALL_HINT = "zeus is not installed (pip install 'hwnas[agent-zeus]')"


def _jetson_energy_j(soc_measurement) -> float | None:
    """A Jetson window's energy: the module's input rail, else its CPU + GPU rails; None off a Jetson."""
    total = getattr(soc_measurement, "total_energy_mj", None)
    if total is not None:
        return total / 1e3
    parts = [getattr(soc_measurement, name, None) for name in ("cpu_energy_mj", "gpu_energy_mj")]
    parts = [p for p in parts if p is not None]
    return sum(parts) / 1e3 if parts else None


class ZeusMeter(PowerMeter):
    _windows = itertools.count()

    def __init__(self, monitor, label: str, sampling_period_s: float) -> None:
        self._monitor, self._label, self._period = monitor, label, sampling_period_s
        self._key = ""

    def start(self) -> None:
        self._key = f"hwnas-{next(self._windows)}"
        # The backends synchronise their device before the clock stops; Zeus must not import torch for it.
        self._monitor.begin_window(self._key, sync_execution=False)

    def poll(self) -> None:
        """Zeus tracks counter wrap-around and Jetson sampling in its own helper processes."""

    def stop(self) -> EnergyReading:
        m = self._monitor.end_window(self._key, sync_execution=False)
        energy = sum(m.gpu_energy.values()) + sum((m.cpu_energy or {}).values())
        jetson = _jetson_energy_j(m.soc_energy) if m.soc_energy is not None else None
        energy += jetson or 0.0
        return EnergyReading(source=f"zeus:{self._label}", window_s=m.time, energy_j=energy,
                             sampling_period_s=self._period)


class ZeusSource(PowerSource):
    name = "zeus"
    opt_in = True

    def __init__(self, gpu_index: int | None = None) -> None:
        self.gpu_index = int(os.environ.get("HWNAS_NVML_DEVICE", "0")) if gpu_index is None else gpu_index
        self._monitor = None
        self._label = ""
        self._period = 0.0

    def probe(self) -> Availability:
        if importlib.util.find_spec("zeus") is None:
            return Availability(False, INSTALL_HINT)
        from zeus.device import get_gpus
        from zeus.device.gpu.common import ZeusGPUInitError
        from zeus.monitor import ZeusMonitor

        try:
            try:
                gpu_count = len(get_gpus())
            except ZeusGPUInitError:  # no NVML or AMD SMI: a CPU or Jetson host
                gpu_count = 0
            monitor = ZeusMonitor(gpu_indices=[self.gpu_index] if self.gpu_index < gpu_count else [])
        except Exception as exc:  # noqa: BLE001 - Zeus raises its own error family per device kind
            return Availability(False, f"zeus: {type(exc).__name__}: {exc}")
        parts = [f"gpu{i}" for i in monitor.gpu_indices] + [f"cpu{i}" for i in monitor.cpu_indices]
        if monitor.soc_is_present:
            if _jetson_energy_j(monitor.soc.get_total_energy_consumption()) is None:
                return Availability(False, f"zeus found a {type(monitor.soc).__name__} SoC with no CPU, GPU "
                                           "or input power rail it can read")
            parts.append("jetson")
            self._period = JETSON_POLL_S
        if not parts:
            return Availability(False, "zeus found no NVIDIA GPU, RAPL CPU package or Jetson power rail on "
                                       "this host")
        self._monitor, self._label = monitor, "+".join(parts)
        return Availability(True, f"zeus {_zeus_version()}: {self._label}")

    def open(self) -> PowerMeter:
        return ZeusMeter(self._monitor, self._label, self._period)


def _zeus_version() -> str:
    from importlib.metadata import version

    return version("zeus")
