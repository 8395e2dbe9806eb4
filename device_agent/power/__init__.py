"""Power sources, looked up by name. Adding a source is adding a module here."""

from __future__ import annotations

import time
from collections.abc import Callable

from device_agent.power.base import Availability, EnergyReading, PowerMeter, PowerSource
from device_agent.power.nvml import NvmlSource
from device_agent.power.rapl import RaplSource
from device_agent.power.zeus import ZeusSource

# The agent uses the first available source unless told which (--power-source). Zeus (a heavier
# install, and the one for Jetson rails) is opt-in: used only when named.
POWER_SOURCES: dict[str, Callable[[], PowerSource]] = {
    "rapl": RaplSource,
    "nvml": NvmlSource,
    "zeus": ZeusSource,
}

__all__ = ["POWER_SOURCES", "Availability", "EnergyReading", "PowerMeter", "PowerSource", "idle_power_w",
           "probe_all"]


def idle_power_w(source: PowerSource, seconds: float) -> float:
    """Mean power over ``seconds`` of doing nothing: the baseline a record can subtract."""
    meter = source.open()
    meter.start()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        time.sleep(min(0.5, max(0.0, end - time.perf_counter())))
        meter.poll()
    reading = meter.stop()
    return reading.energy_j / reading.window_s if reading.window_s > 0 else 0.0


def probe_all(wanted: str = "") -> dict[str, tuple[PowerSource, Availability]]:
    """Every registered source with what its probe said, in registry order.

    An opt-in source (a heavy library) is probed only when it is the one ``wanted``, so that every
    agent start does not pay its import; otherwise it says how to pick it.
    """
    found = {}
    for name, factory in POWER_SOURCES.items():
        source = factory()
        if source.opt_in and name != wanted:
            found[name] = (source, Availability(False, f"opt-in: start the agent with --power-source {name}"))
        else:
            found[name] = (source, source.probe())
    return found
