"""RAPL energy over a window. This host has no powercap driver, so these tests use a FAKE powercap
sysfs tree (plain files laid out as /sys/class/powercap) - the sensor boundary only."""

from pathlib import Path

import pytest

from hwnas.device_agent.power.rapl import RaplSource


def fake_powercap(root: Path, packages: dict[str, int], max_range: int = 1_000_000) -> Path:
    for zone, energy in packages.items():
        d = root / zone
        d.mkdir(parents=True)
        (d / "name").write_text(f"package-{zone[-1]}\n")
        (d / "energy_uj").write_text(f"{energy}\n")
        (d / "max_energy_range_uj").write_text(f"{max_range}\n")
    core = root / "intel-rapl:0:0"  # a sub-zone: must not be double counted
    core.mkdir()
    (core / "energy_uj").write_text("5\n")
    (core / "max_energy_range_uj").write_text(f"{max_range}\n")
    return root


def set_energy(root: Path, zone: str, value: int) -> None:
    """Atomic, as a sysfs read is: a reader never sees a half-written file."""
    tmp = root / zone / "energy_uj.tmp"
    tmp.write_text(f"{value}\n")
    tmp.replace(root / zone / "energy_uj")


def test_energy_sums_packages_and_handles_wrap_around(tmp_path: Path) -> None:
    root = fake_powercap(tmp_path, {"intel-rapl:0": 900_000, "intel-rapl:1": 100})
    source = RaplSource(root)
    assert source.probe().available
    meter = source.open()
    meter.start()
    set_energy(root, "intel-rapl:0", 50_000)  # wrapped: 100_000 + 50_000 uJ
    set_energy(root, "intel-rapl:1", 200_100)  # +200_000 uJ
    meter.poll()
    set_energy(root, "intel-rapl:0", 80_000)  # +30_000 uJ
    reading = meter.stop()
    assert reading.energy_j == pytest.approx((150_000 + 200_000 + 30_000) / 1e6)
    assert reading.source == "rapl:package-0+package-1"
    assert reading.window_s >= 0


def test_missing_driver_says_why(tmp_path: Path) -> None:
    availability = RaplSource(tmp_path / "nope").probe()
    assert not availability.available and "does not exist" in availability.detail


def test_unreadable_counter_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = fake_powercap(tmp_path, {"intel-rapl:0": 1})
    # Tests run as root here, where every file is readable: fake the permission check (the OS boundary).
    monkeypatch.setattr("hwnas.device_agent.power.rapl.os.access", lambda path, mode: False)
    availability = RaplSource(root).probe()
    assert not availability.available and "permission" in availability.detail


def test_measurement_reports_energy_over_the_timed_window(tmp_path: Path, tiny_model: bytes) -> None:
    """A FAKE 10 W package: a thread advances energy_uj with the wall clock while the agent measures."""
    import threading
    import time

    from hwnas.device_agent.backends.onnxruntime_backend import OnnxRuntimeBackend
    from hwnas.device_agent.measure import MeasureOptions, measure

    root = fake_powercap(tmp_path / "powercap", {"intel-rapl:0": 0}, max_range=2**40)
    model_path = tmp_path / "m.onnx"
    model_path.write_bytes(tiny_model)
    stop = threading.Event()
    t0 = time.perf_counter()

    def ten_watts() -> None:
        while not stop.is_set():
            set_energy(root, "intel-rapl:0", int((time.perf_counter() - t0) * 10e6))
            time.sleep(0.002)

    writer = threading.Thread(target=ten_watts)
    writer.start()
    try:
        loaded = OnnxRuntimeBackend().load(model_path, threads=1)
        result = measure(loaded, MeasureOptions(protocol="fixed", protocol_params={"count": 2000}),
                         RaplSource(root))
    finally:
        stop.set()
        writer.join()
    assert result.power.available and result.power.source == "rapl:package-0"
    assert result.power.mean_power_w == pytest.approx(10.0, rel=0.25)
    assert result.power.energy_per_inference_mj == pytest.approx(result.power.energy_j * 1e3 / 2000)
