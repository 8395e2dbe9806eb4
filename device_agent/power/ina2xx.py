"""An INA219 / INA226 / INA260 (or kin) power monitor on I2C, through Linux's ``ina2xx`` hwmon driver.

Boards without an on-board power sensor (Raspberry Pi, Coral dev boards, most phones on a bench) get one by
wiring such a chip in the supply line; with the driver bound (a device-tree overlay, or ``echo ina219 0x40 >
/sys/bus/i2c/devices/i2c-1/new_device``) it appears as ``/sys/class/hwmon/hwmonN`` whose ``name`` is the
chip. The meter samples ``power1_input`` (µW) in a thread over the timed window, or bus voltage × current
(``in1_input`` mV × ``curr1_input`` mA) where the chip's driver reports no power, at the chip's own
``update_interval`` (its conversion time; reading faster only repeats a value) and integrates.

``--power-source ina2xx`` uses the first such hwmon device; ``ina2xx:hwmon3`` (or a path) names one.
``HWNAS_HWMON_ROOT`` moves the root (tests point it at a fake tree).
"""

from __future__ import annotations

import os
from pathlib import Path

from hwnas.device_agent.power.base import Availability, PowerMeter, PowerSource
from hwnas.device_agent.power.sampling import SampledMeter

CHIPS = ("ina209", "ina219", "ina220", "ina226", "ina230", "ina231", "ina234", "ina237", "ina238", "ina260")
DEFAULT_PERIOD_S = 0.01  # when the driver does not say its update interval
MIN_PERIOD_S = 0.002


def hwmon_root() -> Path:
    return Path(os.environ.get("HWNAS_HWMON_ROOT", "/sys/class/hwmon"))


def _read(path: Path) -> str:
    return path.read_text().strip()


class Ina2xxSource(PowerSource):
    name = "ina2xx"
    argument = "HWMON"

    def __init__(self, where: str = "") -> None:
        self.where = where
        self._device: Path | None = None
        self._watts = None

    def _candidates(self) -> list[Path]:
        if self.where:
            path = Path(self.where) if "/" in self.where else hwmon_root() / self.where
            return [path]
        root = hwmon_root()
        return sorted(root.iterdir(), key=lambda p: p.name) if root.is_dir() else []

    def probe(self) -> Availability:
        reasons = []
        for device in self._candidates():
            try:
                chip = _read(device / "name")
            except OSError:
                reasons.append(f"{device} has no readable 'name'")
                continue
            if chip not in CHIPS:
                reasons.append(f"{device} is a {chip!r}, not one of {', '.join(CHIPS)}")
                continue
            found = self._reader(device)
            if isinstance(found, str):
                reasons.append(found)
                continue
            self._device, self._watts = device, found
            return Availability(True, f"{chip} at {device}, sampled every {self.period_s() * 1e3:g} ms")
        if not reasons:
            reasons.append(f"no hwmon devices under {hwmon_root()} (is the ina2xx driver bound?)")
        return Availability(False, "; ".join(reasons) if self.where else
                            f"no INA2xx power monitor: {'; '.join(reasons[-3:])}")

    @staticmethod
    def _reader(device: Path):
        """A callable giving watts, or why this device cannot give them."""
        power, volts, amps = device / "power1_input", device / "in1_input", device / "curr1_input"
        try:
            if power.is_file():
                float(_read(power))
                return lambda: float(_read(power)) / 1e6
            if volts.is_file() and amps.is_file():
                float(_read(volts)), float(_read(amps))
                return lambda: float(_read(volts)) * float(_read(amps)) / 1e6
        except (OSError, ValueError) as exc:
            return f"{device}: its power files are not readable numbers ({exc})"
        return f"{device} has neither power1_input nor in1_input and curr1_input"

    def period_s(self) -> float:
        try:
            interval_ms = float(_read(self._device / "update_interval"))
        except (OSError, ValueError, TypeError):
            return DEFAULT_PERIOD_S
        return max(MIN_PERIOD_S, interval_ms / 1e3)

    def open(self) -> PowerMeter:
        assert self._device is not None and self._watts is not None
        return SampledMeter(self._watts, f"ina2xx:{self._device.name}", self.period_s())
