"""Intel/AMD RAPL package energy through the Linux powercap sysfs tree.

Reads ``energy_uj`` of every top-level ``intel-rapl:N`` zone (one per CPU
package) and sums them. Each counter wraps at its ``max_energy_range_uj``; a
delta that goes backwards is one wrap, and the meter is polled often enough
(every few seconds of a long window) that two wraps cannot hide between reads.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from hwnas.device_agent.power.base import Availability, EnergyReading, PowerMeter, PowerSource

DEFAULT_POWERCAP_ROOT = Path("/sys/class/powercap")
_PACKAGE_ZONE = re.compile(r"intel-rapl:\d+")


@dataclass
class _Zone:
    name: str
    energy_file: Path
    max_range_uj: int


def _read_int(path: Path) -> int:
    return int(path.read_text().strip())


class RaplMeter(PowerMeter):
    def __init__(self, zones: list[_Zone]) -> None:
        self._zones = zones
        self._last: list[int] = []
        self._total_uj = 0
        self._t0 = 0.0

    def _read(self) -> list[int]:
        return [_read_int(z.energy_file) for z in self._zones]

    def start(self) -> None:
        self._total_uj = 0
        self._t0 = time.perf_counter()
        self._last = self._read()

    def poll(self) -> None:
        now = self._read()
        for i, (zone, before, after) in enumerate(zip(self._zones, self._last, now, strict=True)):
            delta = after - before
            if delta < 0:  # the counter wrapped once since the last read
                delta += zone.max_range_uj
            self._total_uj += delta
            self._last[i] = after

    def stop(self) -> EnergyReading:
        self.poll()
        window = time.perf_counter() - self._t0
        names = "+".join(z.name for z in self._zones)
        return EnergyReading(source=f"rapl:{names}", window_s=window, energy_j=self._total_uj / 1e6)


class RaplSource(PowerSource):
    name = "rapl"

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root or os.environ.get("HWNAS_POWERCAP_ROOT", DEFAULT_POWERCAP_ROOT))

    def _zones(self) -> list[_Zone]:
        zones = []
        for zone_dir in sorted(self.root.glob("intel-rapl:*")):
            if not _PACKAGE_ZONE.fullmatch(zone_dir.name):
                continue  # sub-zones (core, uncore, dram) are inside the package figure
            label = (zone_dir / "name").read_text().strip() if (zone_dir / "name").exists() else zone_dir.name
            zones.append(_Zone(label, zone_dir / "energy_uj", _read_int(zone_dir / "max_energy_range_uj")))
        return zones

    def probe(self) -> Availability:
        if not self.root.is_dir():
            return Availability(False, f"{self.root} does not exist (no powercap driver on this host)")
        try:
            zones = self._zones()
        except OSError as exc:
            return Availability(False, f"cannot read RAPL zones under {self.root}: {exc}")
        if not zones:
            return Availability(False, f"no intel-rapl package zones under {self.root}")
        unreadable = [str(z.energy_file) for z in zones if not os.access(z.energy_file, os.R_OK)]
        if unreadable:
            return Availability(
                False,
                f"no permission to read {', '.join(unreadable)} (root-only since CVE-2020-8694; "
                "run the agent as root or grant read access)",
            )
        return Availability(True, ", ".join(f"{z.name} ({z.energy_file})" for z in zones))

    def open(self) -> RaplMeter:
        return RaplMeter(self._zones())
