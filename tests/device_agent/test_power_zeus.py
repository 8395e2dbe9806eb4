"""The ``zeus`` power source: RAPL packages and Jetson power rails read through ml.energy's Zeus.

This host has no powercap driver and is no Jetson, so these tests FAKE the sensor boundary only: a
powercap tree and a Jetson INA3221 hwmon tree as plain files, placed where Zeus looks (its RAPL folder
constant, and its /sys paths rerooted under a temporary folder), and Zeus's "is this a Jetson" platform
check. Zeus's discovery, its helper processes and window arithmetic, and everything above them are real.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hwnas.device_agent.power import PowerMeter, probe_all
from hwnas.device_agent.power.zeus import JETSON_POLL_S, ZeusSource
from tests.conftest import modules_loaded_by

from .test_rapl import set_energy

zeus_cpu = pytest.importorskip("zeus.device.cpu")
import zeus.device.cpu.rapl as zeus_rapl  # noqa: E402 - after the importorskip
import zeus.device.soc as zeus_soc  # noqa: E402
import zeus.device.soc.jetson as zeus_jetson  # noqa: E402

JETSON_MV, JETSON_MA = 19_000, 250  # the module's input rail: 4.75 W


@pytest.fixture
def no_zeus_devices(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Zeus's device singletons reset, no RAPL and no Jetson; helper processes stopped afterwards."""
    monkeypatch.setattr(zeus_cpu, "_cpus", None)
    monkeypatch.setattr(zeus_soc, "_soc", None)
    monkeypatch.setattr(zeus_cpu, "rapl_is_available", lambda: False)
    monkeypatch.setattr(zeus_rapl, "rapl_is_available", lambda: False)
    for module in (zeus_soc, zeus_jetson):
        monkeypatch.setattr(module, "jetson_is_available", lambda: False)
    yield
    cpus, soc = zeus_cpu._cpus, zeus_soc._soc
    for cpu in getattr(cpus, "cpus", []):
        tracker = cpu.rapl_file._wraparound_tracker
        if tracker is not None:
            tracker._stop()
    if isinstance(soc, zeus_jetson.Jetson):
        soc._stop_process()


def started_meter(expect: str) -> PowerMeter:
    """Probe a fresh source, check what it says it found, and start a window on it."""
    source = ZeusSource()
    availability = source.probe()
    assert availability.available, availability.detail
    assert availability.detail.endswith(expect)
    meter = source.open()
    meter.start()
    return meter


def test_a_host_without_sensors_says_so(no_zeus_devices: None) -> None:
    availability = ZeusSource().probe()
    assert not availability.available
    assert "no NVIDIA GPU, RAPL CPU package or Jetson power rail" in availability.detail


def test_rapl_packages_through_zeus(no_zeus_devices: None, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "intel-rapl"
    for zone, name in (("intel-rapl:0", "package-0"), ("intel-rapl:0/intel-rapl:0:0", "core")):
        (root / zone).mkdir(parents=True)
        (root / zone / "name").write_text(f"{name}\n")
        (root / zone / "max_energy_range_uj").write_text("262143328850\n")
        (root / zone / "energy_uj").write_text("1000000\n")
    monkeypatch.setattr(zeus_cpu, "rapl_is_available", lambda: True)
    monkeypatch.setattr(zeus_rapl, "rapl_is_available", lambda: True)
    monkeypatch.setattr(zeus_rapl, "RAPL_DIR", str(root))

    meter = started_meter(expect=": cpu0")
    set_energy(root, "intel-rapl:0", 4_000_000)  # +3 J on the package
    reading = meter.stop()
    assert reading.energy_j == pytest.approx(3.0)
    assert reading.source == "zeus:cpu0" and reading.sampling_period_s == 0.0
    assert reading.window_s >= 0


def fake_jetson_rails(sys_root: Path) -> None:
    """An Orin-style INA3221 hwmon tree: input rail and CPU/GPU rail as mV and mA files."""
    hwmon = sys_root / "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon1"
    hwmon.mkdir(parents=True)
    for index, label, mv, ma in ((1, "VDD_IN", JETSON_MV, JETSON_MA), (2, "VDD_CPU_GPU_CV", 19_000, 100)):
        (hwmon / f"in{index}_label").write_text(f"{label}\n")
        (hwmon / f"in{index}_input").write_text(f"{mv}\n")
        (hwmon / f"curr{index}_input").write_text(f"{ma}\n")


def test_jetson_input_rail_through_zeus(no_zeus_devices: None, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_jetson_rails(tmp_path)
    real_path = zeus_jetson.Path

    def rerooted(*parts: str | Path) -> Path:
        path = real_path(*parts)
        return tmp_path / path.relative_to("/") if path.parts[:2] == ("/", "sys") else path

    monkeypatch.setattr(zeus_jetson, "Path", rerooted)
    for module in (zeus_soc, zeus_jetson):
        monkeypatch.setattr(module, "jetson_is_available", lambda: True)

    meter = started_meter(expect=": jetson")
    time.sleep(1.5)
    reading = meter.stop()
    watts = JETSON_MV * JETSON_MA / 1e6
    # Zeus integrates the rail every JETSON_POLL_S: each end of the window may be off by one period.
    assert reading.energy_j == pytest.approx(watts * reading.window_s, abs=2 * JETSON_POLL_S * watts)
    assert reading.source == "zeus:jetson" and reading.sampling_period_s == JETSON_POLL_S


def test_zeus_is_opt_in_and_never_imported_unless_named() -> None:
    assert probe_all()["zeus"][1].detail == "opt-in: start the agent with --power-source zeus"
    code = "from hwnas.device_agent.power import probe_all; probe_all()"
    assert modules_loaded_by(code, ("zeus", "pandas", "sklearn")) == []
