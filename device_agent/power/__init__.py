"""Power sources, looked up by name. Adding a source is adding a module here."""

from __future__ import annotations

from collections.abc import Callable

from device_agent.power.base import Availability, EnergyReading, PowerMeter, PowerSource
from device_agent.power.rapl import RaplSource

POWER_SOURCES: dict[str, Callable[[], PowerSource]] = {
    "rapl": RaplSource,
}

__all__ = ["POWER_SOURCES", "Availability", "EnergyReading", "PowerMeter", "PowerSource", "probe_all"]


def probe_all() -> dict[str, tuple[PowerSource, Availability]]:
    """Every registered source with what its probe said, in registry order."""
    found = {}
    for name, factory in POWER_SOURCES.items():
        source = factory()
        found[name] = (source, source.probe())
    return found
