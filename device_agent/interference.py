"""What happened on the host while a measurement ran: other busy processes, thermal throttling.

A latency taken while another process held a core, or while the CPU throttled, is not the device's
latency. ``RunWatch`` snapshots every process's CPU time (psutil: Linux, macOS, Windows) and the Linux
throttle counters in /sys when the timed window opens and again when it closes, and turns the differences
into warnings for the record. A host that does not tell gets no warning rather than a guessed one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from hwnas.device_agent.gpu import violation_ns
from hwnas.device_agent.host import PSUTIL_ERRORS

OTHER_PROCESS_CPU_SHARE = 0.10  # of one CPU over the timed window: above this, the record warns
MIN_SPAN_S = 0.1  # ten of the OS's 10 ms CPU-time ticks: a shorter span cannot tell a share

# Counters that grow each time the hardware throttles: Intel's per-core and package counters, and the
# Raspberry Pi firmware's bit field (bits 0-3: throttling now, bits 16-19: since boot).
_THROTTLE_GLOBS = ("devices/system/cpu/cpu*/thermal_throttle/core_throttle_count",
                   "devices/system/cpu/cpu*/thermal_throttle/package_throttle_count")
_RPI_THROTTLED = "devices/platform/soc/soc:firmware/get_throttled"


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


ProcessTable = dict[int, tuple[str, float, float]]  # pid -> (name, CPU seconds so far, clock when read)


def process_cpu_seconds(clock: Callable[[], float] = time.monotonic) -> ProcessTable:
    """pid -> (name, user + system CPU seconds so far, ``clock()`` just after reading them), for every process
    the agent may read. Reading the table takes tens of milliseconds; each process keeps its own time of
    reading, so its share of a CPU is its CPU time over the time between its own two readings."""
    seconds: ProcessTable = {}
    try:
        for process in psutil.process_iter(["name", "cpu_times"]):
            times = process.info["cpu_times"]  # None where access is denied
            if times is not None:
                seconds[process.pid] = (process.info["name"] or "?", times.user + times.system, clock())
    except PSUTIL_ERRORS:
        return seconds
    return seconds


def throttle_counts(sys_root: Path = Path("/sys")) -> dict[str, int]:
    counts = {}
    for pattern in _THROTTLE_GLOBS:
        for path in sys_root.glob(pattern):
            value = _read(path)
            if value.isdigit():
                counts[str(path.relative_to(sys_root))] = int(value)
    return counts


def rpi_throttled_now(sys_root: Path = Path("/sys")) -> bool:
    value = _read(sys_root / _RPI_THROTTLED)
    try:
        return bool(int(value, 16 if value.startswith("0x") else 10) & 0xF)
    except ValueError:
        return False


@dataclass
class RunWatch:
    """Open at the start of the timed window, ``close`` at its end for the warnings."""

    processes: Callable[[Callable[[], float]], ProcessTable] = process_cpu_seconds
    sys_root: Path = Path("/sys")
    own_pid: int = field(default_factory=os.getpid)
    clock: Callable[[], float] = time.monotonic  # the window's length; tests step a clock of their own
    _seconds: ProcessTable = field(default_factory=dict, init=False)
    _throttles: dict[str, int] = field(default_factory=dict, init=False)
    _rpi_throttled: bool = field(default=False, init=False)
    _gpu_violations: dict[str, int] = field(default_factory=dict, init=False)
    _t0: float = field(default=0.0, init=False)

    def start(self) -> None:
        self._seconds = self.processes(self.clock)
        self._throttles = throttle_counts(self.sys_root)
        self._rpi_throttled = rpi_throttled_now(self.sys_root)
        self._gpu_violations = violation_ns()
        self._t0 = self.clock()

    def close(self) -> list[str]:
        window_s = self.clock() - self._t0
        warnings = []
        busy = self._busy_others(window_s)
        if busy:
            names = ", ".join(f"{name} (pid {pid}, {share:.0%})" for pid, name, share in busy[:3])
            warnings.append(f"other processes used more than {OTHER_PROCESS_CPU_SHARE:.0%} of a CPU during the "
                            f"timed window: {names}")
        throttled = sorted(k for k, v in throttle_counts(self.sys_root).items() if v > self._throttles.get(k, v))
        if throttled:
            warnings.append(f"the CPU throttled thermally during the timed window ({throttled[0]} grew)")
        elif self._rpi_throttled or rpi_throttled_now(self.sys_root):
            warnings.append("the board's firmware reports throttling (under-voltage or temperature)")
        grew = [p for p, ns in violation_ns().items() if ns > self._gpu_violations.get(p, ns)]
        if grew:
            warnings.append(f"the GPU was held below its clocks by its {' and '.join(grew)} limit during the "
                            "timed window")
        return warnings

    def _busy_others(self, window_s: float) -> list[tuple[int, str, float]]:
        """Other processes above the share, each over the span between its own two readings: dividing by the
        timed window alone, a short window plus the table's reading time gave "1165%" on a 2-core host.
        Spans shorter than ``MIN_SPAN_S`` say nothing (CPU time advances in 10 ms ticks)."""
        if window_s <= 0 or not self._seconds:
            return []
        cpus = psutil.cpu_count() or 1
        busy = []
        for pid, (name, seconds, at) in self.processes(self.clock).items():
            if pid == self.own_pid or pid not in self._seconds or self._seconds[pid][0] != name:
                continue  # our own, new since the start, or a reused pid
            span = at - self._seconds[pid][2]
            if span < MIN_SPAN_S:
                continue
            share = min((seconds - self._seconds[pid][1]) / span, cpus)
            if share > OTHER_PROCESS_CPU_SHARE:
                busy.append((pid, name, share))
        return sorted(busy, key=lambda b: -b[2])
