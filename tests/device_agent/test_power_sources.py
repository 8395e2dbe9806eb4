"""NVML energy and GPU state, choosing a power source, and idle-baseline subtraction.

This host has no NVIDIA GPU and no powercap driver, so these tests use FAKES at the sensor boundary only:
an NVML shim module standing in for ``pynvml`` (a GPU drawing a constant power), and a powercap sysfs
tree whose counter a thread advances at a constant power. Everything above the sensor is the real code.
"""

from __future__ import annotations

import importlib.machinery
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from hwnas.controller.fleet.client import AgentClient
from hwnas.device_agent import gpu
from hwnas.device_agent.host import read_state
from hwnas.device_agent.interference import RunWatch
from hwnas.device_agent.power import rapl
from hwnas.device_agent.power.nvml import SAMPLE_PERIOD_S, NvmlSource

from ..conftest import start_agent
from .test_rapl import fake_powercap

GPU_W = 50.0


class NVMLError(Exception):
    pass


def nvml_shim(counter: bool = True, driver: bool = True) -> types.ModuleType:
    """A FAKE ``pynvml``: one GPU drawing GPU_W watts; pre-Volta GPUs have no energy counter."""
    shim = types.ModuleType("pynvml")
    shim.__spec__ = importlib.machinery.ModuleSpec("pynvml", None)
    shim.NVMLError = NVMLError
    t0 = time.perf_counter()

    def init() -> None:
        if not driver:
            raise NVMLError("Driver Not Loaded")

    def energy_mj(handle) -> int:
        if not counter:
            raise NVMLError("Not Supported")
        return int(1e9 + (time.perf_counter() - t0) * GPU_W * 1e3)

    shim.nvmlInit = init
    shim.nvmlDeviceGetCount = lambda: 1
    shim.nvmlDeviceGetHandleByIndex = lambda i: ("gpu", i)
    shim.nvmlDeviceGetName = lambda h: b"Fake GPU"
    shim.nvmlDeviceGetTotalEnergyConsumption = energy_mj
    shim.nvmlDeviceGetPowerUsage = lambda h: int(GPU_W * 1e3)  # mW
    shim.NVML_CLOCK_SM, shim.NVML_TEMPERATURE_GPU = 1, 0
    shim.nvmlDeviceGetClockInfo = lambda h, clock: 1410 if clock == shim.NVML_CLOCK_SM else 0
    shim.nvmlDeviceGetTemperature = lambda h, sensor: 61
    shim.violations = {0: 0, 1: 5_000}  # ns held back by the power (0) and thermal (1) policies
    shim.nvmlDeviceGetViolationStatus = lambda h, policy: types.SimpleNamespace(
        violationTime=shim.violations[policy])
    return shim


@pytest.mark.parametrize(("counter", "period"), [(True, 0.0), (False, SAMPLE_PERIOD_S)])
def test_nvml_energy_over_a_window_by_counter_or_by_sampling(monkeypatch: pytest.MonkeyPatch, counter: bool,
                                                             period: float) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", nvml_shim(counter=counter))
    source = NvmlSource()
    availability = source.probe()
    assert availability.available and "Fake GPU" in availability.detail
    meter = source.open()
    meter.start()
    time.sleep(0.3)
    reading = meter.stop()
    # a counter has no period; sampling gives the period the samples came at, a little over the one asked for
    assert reading.source == "nvml:0:Fake GPU" and reading.sampling_period_s == pytest.approx(period, rel=0.5)
    assert reading.energy_j / reading.window_s == pytest.approx(GPU_W, rel=0.05)


def test_nvml_without_a_driver_or_the_library_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", nvml_shim(driver=False))
    availability = NvmlSource().probe()
    assert not availability.available and "Driver Not Loaded" in availability.detail
    monkeypatch.setitem(sys.modules, "pynvml", nvml_shim())
    assert "HWNAS_NVML_DEVICE=3 is not one" in NvmlSource(index=3).probe().detail
    monkeypatch.delitem(sys.modules, "pynvml")
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    assert "nvidia-ml-py is not installed" in NvmlSource().probe().detail


@pytest.fixture
def powered_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> float:
    """A FAKE powercap tree whose package counter grows at a constant 8 W.

    The counter is the clock times the power, computed when the agent reads it: a thread that rewrote the file
    every few ms fell behind when a loaded host starved it, and the idle baseline then read 2.7 W of 8.
    """
    watts = 8.0
    root = fake_powercap(tmp_path / "powercap", {"intel-rapl:0": 0}, max_range=1 << 40)
    monkeypatch.setenv("HWNAS_POWERCAP_ROOT", str(root))
    t0 = time.perf_counter()
    package = root / "intel-rapl:0" / "energy_uj"
    read_file = rapl._read_int

    def read(path: Path) -> int:
        return int((time.perf_counter() - t0) * watts * 1e6) if path == package else read_file(path)

    monkeypatch.setattr(rapl, "_read_int", read)
    return watts


def test_records_report_power_net_of_the_idle_baseline(tmp_path: Path, powered_host: float,
                                                       tiny_model: bytes) -> None:
    server = start_agent(tmp_path / "cache", power_source="rapl", idle_baseline_s=0.5)
    try:
        with AgentClient(server.address, timeout_s=60) as client:
            sha, _ = client.ensure_model(tiny_model)
            power = client.profile(sha, protocol="fixed", protocol_params={"count": 20000}).result["power"]
    finally:
        server.stop()
    assert power["available"] and power["source"] == "rapl:package-0"
    assert power["idle_power_w"] == pytest.approx(powered_host, rel=0.1)
    assert power["energy_j"] / power["window_s"] == pytest.approx(powered_host, rel=0.1)  # the total stays total
    assert abs(power["mean_power_w"]) < 0.1 * powered_host  # nothing but idle draw in this fake: net ~ 0
    assert power["sampling_period_s"] == 0.0  # an energy counter


def test_a_named_power_source_that_is_unavailable_stops_the_agent_with_the_reason(tmp_path: Path) -> None:
    for flags, message in ((["--power-source", "nvml"], "power source 'nvml' is not available"),
                           (["--power-source", "zeus"], "power source 'zeus' is not available: zeus found no"),
                           (["--power-source", "thermocouple"], "unknown power source 'thermocouple'"),
                           (["--idle-baseline-seconds", "1"], "--idle-baseline-seconds needs a power source")):
        done = subprocess.run([sys.executable, "-m", "hwnas.device_agent", "serve", "--port", "0", "--insecure",
                               "--cache-dir", str(tmp_path / "c"), *flags],
                              capture_output=True, text=True, timeout=60, env={"HWNAS_POWERCAP_ROOT": "/nonexistent",
                                                                               "PATH": "/usr/bin:/bin"})
        assert done.returncode == 2 and message in done.stderr, done.stderr


def test_the_real_nvml_binding_on_a_host_without_an_nvidia_driver_says_so() -> None:
    pytest.importorskip("pynvml", reason="nvidia-ml-py (the agent-gpu extra) is not installed")
    availability = NvmlSource().probe()
    if availability.available:
        pytest.skip(f"this host has an NVIDIA GPU: {availability.detail}")
    assert availability.detail.startswith("NVML: ") and "no NVIDIA driver or GPU?" in availability.detail


@pytest.fixture
def gpu_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """The NVML shim as the host's GPU, for the state readers (which initialise NVML once)."""
    shim = nvml_shim()
    monkeypatch.setitem(sys.modules, "pynvml", shim)
    gpu.nvml.cache_clear()
    yield shim
    gpu.nvml.cache_clear()


def test_records_carry_the_gpus_clock_and_temperature(gpu_host: types.ModuleType) -> None:
    state = read_state()
    assert (state.gpu_name, state.gpu_sm_clock_mhz, state.gpu_temperature_c) == ("Fake GPU", 1410.0, 61.0)


def test_gpu_throttling_during_the_window_is_a_warning(gpu_host: types.ModuleType, tmp_path: Path) -> None:
    watch = RunWatch(processes=lambda clock: {}, sys_root=tmp_path / "none")
    watch.start()
    assert watch.close() == []  # the counters did not move
    watch.start()
    gpu_host.violations[1] += 2_000_000
    assert watch.close() == ["the GPU was held below its clocks by its thermal limit during the timed window"]


def test_without_a_gpu_the_state_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", nvml_shim(driver=False))
    gpu.nvml.cache_clear()
    try:
        assert gpu.gpu_state() == ("", 0.0, 0.0) and gpu.violation_ns() == {}
    finally:
        gpu.nvml.cache_clear()
