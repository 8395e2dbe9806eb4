"""Warnings for a measurement disturbed by another busy process or by thermal throttling."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hwnas.device_agent.backends.onnxruntime_backend import OnnxRuntimeBackend
from hwnas.device_agent.interference import RunWatch
from hwnas.device_agent.measure import MeasureOptions, measure
from tests.sync import busy_neighbour


def test_a_busy_process_during_the_timed_window_is_named_in_the_warnings(tmp_path: Path, tiny_model: bytes) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(tiny_model)
    model = OnnxRuntimeBackend().load(path, threads=1)
    with busy_neighbour() as hog:
        before = sum(hog.cpu_times()[:2])
        # About a second of timing: long enough for the OS's 10 ms CPU-time ticks to see a busy neighbour.
        m = measure(model, MeasureOptions(protocol="fixed", protocol_params={"count": 50000.0}), None)
        share = (sum(hog.cpu_times()[:2]) - before) / (m.wall_ms / 1e3)
    assert m.wall_ms > 300
    busy = [w for w in m.warnings if "other processes used more than 10% of a CPU" in w]
    assert busy, m.warnings
    named = {int(pid): int(pct) for pid, pct in re.findall(r"\(pid (\d+), (\d+)%\)", busy[0])}
    # The warning names the three busiest others: the neighbour, unless a loaded machine has three others at
    # least as busy (its share over the whole call, a little longer than the timed window: 10 points' slack).
    assert hog.pid in named or (len(named) == 3 and min(named.values()) >= 100 * share - 10), (busy[0], share)


def fake_processes(seconds: dict[int, float]):
    """A stand-in for psutil's process table: pid -> CPU seconds, the dict changed in place by the test."""
    return lambda clock: {pid: ("my proc", t, clock()) for pid, t in seconds.items()}


def test_a_short_window_and_a_slow_process_table_give_no_impossible_share(tmp_path: Path) -> None:
    """"hwnas (pid 22672, 1165%)" on a 2-core host: a process's CPU time was divided by the timed window only,
    though reading the process table itself takes tens of milliseconds at both ends."""
    import psutil

    clock = [0.0]
    hog = {"seconds": 0.0}

    def slow_table(read_clock):  # reading takes 50 ms; the hog runs flat out (100% of a CPU) all the while
        table = {}
        for pid in (100, 200):
            clock[0] += 0.025
            hog["seconds"] = clock[0]
            table[pid] = ("hog" if pid == 200 else "agent", hog["seconds"] if pid == 200 else 0.0, read_clock())
        return table

    watch = RunWatch(processes=slow_table, sys_root=tmp_path / "none", own_pid=100, clock=lambda: clock[0])
    watch.start()
    clock[0] += 0.08  # an 80 ms timed window
    warnings = watch.close()
    shares = [int(p) for p in re.findall(r"\(pid 200, (\d+)%\)", " ".join(warnings))]
    assert shares == [100], warnings  # (0.08 + 0.05) / 0.08 = 162% before; worse the shorter the window
    assert max(shares) <= 100 * (psutil.cpu_count() or 1)


def test_quiet_neighbours_and_steady_throttle_counters_give_no_warning(tmp_path: Path) -> None:
    """A fake process table and /sys (this VM has no throttle counters): nothing grows, nothing is said."""
    sys_root = tmp_path / "sys"
    seconds = {100: 0.5, 200: 0.07}
    counter = sys_root / "devices/system/cpu/cpu0/thermal_throttle/core_throttle_count"
    counter.parent.mkdir(parents=True)
    counter.write_text("3\n")
    clock = [0.0]
    watch = RunWatch(processes=fake_processes(seconds), sys_root=sys_root, own_pid=100, clock=lambda: clock[0])
    watch.start()
    clock[0] += 0.2
    seconds.update({100: 5.0, 200: 0.08})  # our own process may be busy; pid 200 used 10 ms of 200
    assert watch.close() == []


def test_a_busy_neighbour_in_the_process_table_is_named(tmp_path: Path) -> None:
    seconds = {100: 0.5, 200: 0.07}
    clock = [0.0]
    watch = RunWatch(processes=fake_processes(seconds), sys_root=tmp_path / "none", own_pid=100,
                     clock=lambda: clock[0])
    watch.start()
    clock[0] += 0.2
    seconds[200] += 0.1  # half a CPU over the window
    [warning] = watch.close()
    assert warning.startswith("other processes used more than 10% of a CPU during the timed window: my proc "
                              "(pid 200, ")


def test_a_throttle_counter_that_grows_during_the_window_is_a_warning(tmp_path: Path) -> None:
    sys_root = tmp_path / "sys"
    counter = sys_root / "devices/system/cpu/cpu1/thermal_throttle/package_throttle_count"
    counter.parent.mkdir(parents=True)
    counter.write_text("3\n")
    watch = RunWatch(processes=fake_processes({1: 0.0}), sys_root=sys_root)
    watch.start()
    counter.write_text("4\n")
    assert watch.close() == ["the CPU throttled thermally during the timed window "
                             "(devices/system/cpu/cpu1/thermal_throttle/package_throttle_count grew)"]


@pytest.mark.parametrize(("value", "warned"), [("0x0", False), ("0x50000", False), ("0x4", True)])
def test_a_raspberry_pi_throttling_now_is_a_warning(tmp_path: Path, value: str, warned: bool) -> None:
    """Bits 0-3 of the firmware's get_throttled mean 'now'; bits 16-19 only 'since boot'."""
    sys_root = tmp_path / "sys"
    flag = sys_root / "devices/platform/soc/soc:firmware/get_throttled"
    flag.parent.mkdir(parents=True)
    flag.write_text(value)
    watch = RunWatch(processes=lambda clock: {}, sys_root=sys_root)
    watch.start()
    assert bool(watch.close()) == warned
