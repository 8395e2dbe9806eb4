"""Power sources, looked up by name. Adding a source is adding a module here."""

from __future__ import annotations

import time

from hwnas.device_agent.power.base import Availability, EnergyReading, PowerMeter, PowerSource
from hwnas.device_agent.power.ina2xx import Ina2xxSource
from hwnas.device_agent.power.nvml import NvmlSource
from hwnas.device_agent.power.rapl import RaplSource
from hwnas.device_agent.power.serial_meter import SerialMeterSource
from hwnas.device_agent.power.zeus import ZeusSource

# The agent uses the first available source unless told which (--power-source NAME[:ARG]). Zeus (a heavier
# install, and the one for Jetson rails) and a serial meter (a port is opened only when named) are opt-in.
POWER_SOURCES: dict[str, type[PowerSource]] = {
    "rapl": RaplSource,
    "nvml": NvmlSource,
    "ina2xx": Ina2xxSource,
    "zeus": ZeusSource,
    "serial": SerialMeterSource,
}

__all__ = ["POWER_SOURCES", "Availability", "EnergyReading", "PowerMeter", "PowerSource", "idle_power_w",
           "parse_power_source", "probe_all"]


def parse_power_source(wanted: str) -> tuple[str, str]:
    """``NAME[:ARG]`` as (name, argument); ValueError for an unknown name or an argument the source does
    not take."""
    name, _, argument = wanted.partition(":")
    if name not in POWER_SOURCES:
        raise ValueError(f"unknown power source {name!r}; known: {sorted(POWER_SOURCES)}")
    if argument and not POWER_SOURCES[name].argument:
        raise ValueError(f"power source {name!r} takes no argument, got {wanted!r}")
    return name, argument


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
    """Every registered source with what its probe said, in registry order; ``wanted``: ``NAME[:ARG]``.

    An opt-in source (a heavy library, a port to open) is probed only when it is the one ``wanted``, so that
    every agent start does not pay for it; otherwise it says how to pick it.
    """
    wanted_name, argument = parse_power_source(wanted) if wanted else ("", "")
    found = {}
    for name, factory in POWER_SOURCES.items():
        source = factory(argument) if name == wanted_name and argument else factory()
        if source.opt_in and name != wanted_name:
            pick = f"{name}:{factory.argument}" if factory.argument else name
            found[name] = (source, Availability(False, f"opt-in: start the agent with --power-source {pick}"))
        else:
            found[name] = (source, source.probe())
    return found
