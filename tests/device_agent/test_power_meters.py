"""External power meters: an INA2xx under Linux's hwmon (a FAKE hwmon tree) and an RDTech UM USB meter on a
serial port (a FAKE meter speaking its protocol on a pseudo-terminal). This machine has neither."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hwnas.controller.fleet.client import AgentClient
from hwnas.device_agent.power import EnergyReading, PowerSource, probe_all
from hwnas.device_agent.power.ina2xx import Ina2xxSource
from hwnas.device_agent.power.serial_meter import SNAPSHOT_BYTES, SerialMeterSource, parse_snapshot

from ..conftest import start_agent


def fake_hwmon(root: Path, name: str, chip: str, files: dict[str, str]) -> Path:
    device = root / name
    device.mkdir(parents=True)
    (device / "name").write_text(chip + "\n")
    for file, value in files.items():
        (device / file).write_text(value + "\n")
    return device


@pytest.fixture
def hwmon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "hwmon"
    fake_hwmon(root, "hwmon0", "coretemp", {"temp1_input": "45000"})
    monkeypatch.setenv("HWNAS_HWMON_ROOT", str(root))
    return root


def probe_and_read(source: PowerSource, expected_detail: str, seconds: float) -> EnergyReading:
    """Probe ``source`` (it must say ``expected_detail``) and read one window of ``seconds``."""
    availability = source.probe()
    assert availability.available and availability.detail == expected_detail
    meter = source.open()
    meter.start()
    time.sleep(seconds)
    return meter.stop()


def test_an_ina219_reporting_power_is_found_and_integrated(hwmon: Path) -> None:
    fake_hwmon(hwmon, "hwmon1", "ina219", {"power1_input": "2500000", "update_interval": "4"})  # 2.5 W
    reading = probe_and_read(Ina2xxSource(), f"ina219 at {hwmon / 'hwmon1'}, sampled every 4 ms", 0.3)
    assert reading.source == "ina2xx:hwmon1" and reading.energy_j / reading.window_s == pytest.approx(2.5)
    assert reading.sampling_period_s == pytest.approx(0.004, rel=0.5)


def test_an_ina3xx_without_power_gives_bus_voltage_times_current(hwmon: Path) -> None:
    device = fake_hwmon(hwmon, "hwmon4", "ina226", {"in1_input": "5100", "curr1_input": "600"})  # 5.1 V, 0.6 A
    source = Ina2xxSource("hwmon4")
    assert source.probe().available
    meter = source.open()
    meter.start()
    time.sleep(0.1)
    (device / "curr1_input").write_text("1200\n")  # the load doubles mid-window
    time.sleep(0.1)
    reading = meter.stop()
    assert 3.06 < reading.energy_j / reading.window_s < 6.12 and reading.sampling_period_s > 0


@pytest.mark.parametrize(("chip", "files", "where", "message"), [
    (None, {}, "", "no INA2xx power monitor: "),
    ("lm75", {"temp1_input": "1"}, "hwmon9", "hwmon9 is a 'lm75', not one of ina209"),
    ("ina219", {"in1_input": "5000"}, "hwmon9", "has neither power1_input nor in1_input and curr1_input"),
    ("ina219", {"power1_input": "garbage"}, "hwmon9", "its power files are not readable numbers"),
])
def test_a_hwmon_without_power_or_current_files_says_why(hwmon: Path, chip: str | None, files: dict, where: str,
                                                         message: str) -> None:
    if chip:
        fake_hwmon(hwmon, "hwmon9", chip, files)
    availability = Ina2xxSource(where).probe()
    assert not availability.available and message in availability.detail, availability.detail


def snapshot(model_id: int, milliwatts: int) -> bytes:
    data = bytearray(SNAPSHOT_BYTES)
    data[0:2] = model_id.to_bytes(2, "big")
    data[2:4] = (510).to_bytes(2, "big")  # 5.10 V (UM34C units)
    data[6:10] = milliwatts.to_bytes(4, "big")
    return bytes(data)


class FakeUmMeter:
    """A FAKE RDTech UM meter on a pseudo-terminal: answers each 0xF0 with a snapshot (or with ``reply``)."""

    def __init__(self, reply=lambda: snapshot(0x0D4C, 1800)) -> None:
        self.master, slave = os.openpty()
        self.port = os.ttyname(slave)
        self._slave = slave
        self.reply = reply
        self.requests = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import select

        while not self._stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master, 64)
            except OSError:
                return
            for byte in data:
                if byte == 0xF0:
                    self.requests += 1
                    answer = self.reply()
                    if answer:
                        os.write(self.master, answer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        os.close(self.master)
        os.close(self._slave)


@pytest.fixture
def meter() -> Iterator[FakeUmMeter]:
    pytest.importorskip("serial", reason="the agent-serial extra (pyserial) is not installed")
    fake = FakeUmMeter()
    yield fake
    fake.close()


def test_a_um34c_on_a_serial_port_is_sampled_over_the_window(meter: FakeUmMeter) -> None:
    reading = probe_and_read(SerialMeterSource(meter.port), f"RDTech UM34C on {meter.port} (reads 1.800 W now)", 0.4)
    assert reading.source == f"serial:{meter.port}" and reading.energy_j / reading.window_s == pytest.approx(1.8)
    assert meter.requests >= 4 and reading.sampling_period_s > 0.03  # asked every 50 ms; the last at stop


def test_records_of_an_agent_with_a_serial_meter_give_source_period_and_idle_baseline(
        meter: FakeUmMeter, tmp_path: Path, tiny_model: bytes) -> None:
    agent = start_agent(tmp_path / "c", power_source=f"serial:{meter.port}", idle_baseline_s=0.3)
    try:
        with AgentClient(agent.address) as client:
            sha, _ = client.ensure_model(tiny_model)
            power = client.profile(sha, protocol="fixed", protocol_params={"count": 3000}).power
    finally:
        agent.stop()
    assert power["available"] and power["source"] == f"serial:{meter.port}"
    assert power["idle_power_w"] == pytest.approx(1.8) and abs(power["mean_power_w"]) < 0.01  # net of idle
    assert power["sampling_period_s"] > 0  # the mean interval of the answers (a short window: start and stop)


@pytest.mark.parametrize(("reply", "message"), [
    (lambda: b"", "answered 0 bytes within 2 s, not a 130-byte snapshot"),
    (lambda: b"\x00" * 40, "answered 40 bytes"),
    (lambda: snapshot(0x1234, 5), "answered model id 0x1234, not one of 0x0963 UM24C"),
])
def test_a_port_that_does_not_answer_or_answers_garbage_stops_the_agent(tmp_path: Path, reply, message: str) -> None:
    pytest.importorskip("serial", reason="the agent-serial extra (pyserial) is not installed")
    fake = FakeUmMeter(reply)
    try:
        done = subprocess.run([sys.executable, "-m", "hwnas.device_agent", "serve", "--port", "0", "--insecure",
                               "--cache-dir", str(tmp_path / "c"), "--power-source", f"serial:{fake.port}"],
                              capture_output=True, text=True, timeout=60)
    finally:
        fake.close()
    assert done.returncode == 2 and f"power source 'serial:{fake.port}' is not available" in done.stderr
    assert message in done.stderr, done.stderr


def test_sources_are_named_with_their_argument_or_refused(tmp_path: Path) -> None:
    assert probe_all()["serial"][1].detail == "opt-in: start the agent with --power-source serial:PORT"
    assert not probe_all("serial")["serial"][1].available  # no port named
    for flags, message in ((["--power-source", "rapl:0"], "power source 'rapl' takes no argument"),
                           (["--power-source", "serial:/nonexistent/tty"], "cannot open /nonexistent/tty")):
        done = subprocess.run([sys.executable, "-m", "hwnas.device_agent", "serve", "--port", "0", "--insecure",
                               "--cache-dir", str(tmp_path / "c"), *flags], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and message in done.stderr, done.stderr
    info = subprocess.run([sys.executable, "-m", "hwnas.device_agent", "info"], capture_output=True, text=True,
                          timeout=60)
    assert set(json.loads(info.stdout)["power_sources"]) == {"rapl", "nvml", "ina2xx", "zeus", "serial"}


def test_a_snapshot_is_read_by_its_documented_offsets() -> None:
    assert parse_snapshot(snapshot(0x09C9, 12345)) == ("UM25C", 12.345)
    with pytest.raises(ValueError, match="not a 130-byte snapshot"):
        parse_snapshot(b"\x09\xc9")


def test_a_meter_that_stops_answering_mid_window_costs_the_power_figure_not_the_latency(
        tmp_path: Path, tiny_model: bytes) -> None:
    from hwnas.device_agent.backends.onnxruntime_backend import OnnxRuntimeBackend
    from hwnas.device_agent.measure import MeasureOptions, measure
    from hwnas.device_agent.power.sampling import SampledMeter

    class UnpluggedMidWindow(PowerSource):
        name = "fake-unplugged"

        def probe(self):
            raise AssertionError("not probed here")

        def open(self):
            answers = iter([1.5])

            def read() -> float:
                try:
                    return next(answers)
                except StopIteration:
                    raise OSError("no answer within 2 s") from None

            return SampledMeter(read, "serial:/dev/fake", 0.01)

    path = tmp_path / "m.onnx"
    path.write_bytes(tiny_model)
    m = measure(OnnxRuntimeBackend().load(path, threads=1),
                MeasureOptions(protocol="fixed", protocol_params={"count": 3000.0}), UnpluggedMidWindow())
    assert m.latency_ms > 0 and not m.power.available
    assert "serial:/dev/fake stopped answering during the window: no answer within 2 s" in m.power.unavailable_reason
