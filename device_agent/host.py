"""What the agent can read about its host: static facts and the state at run time.

Everything here reads /proc and /sys directly (no psutil) so the agent stays
installable on small boards; a file that is missing or unreadable yields an
empty value, never a guess.
"""

from __future__ import annotations

import hashlib
import os
import platform
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

from device_agent.gpu import gpu_state

_CPUFREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq")


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _cpuinfo_fields() -> list[tuple[str, str]]:
    fields = []
    for line in _read_text(Path("/proc/cpuinfo")).splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.append((key.strip(), value.strip()))
    return fields


def cpu_model() -> str:
    """'model name' on x86, 'Model'/'Hardware' on ARM boards such as the Raspberry Pi."""
    fields = _cpuinfo_fields()
    for wanted in ("model name", "Model", "Hardware", "cpu model"):
        for key, value in fields:
            if key == wanted and value:
                return value
    return platform.processor() or platform.machine()


def host_id() -> str:
    """A stable identity of this machine: a hash of its machine-id, else of its hostname and MAC address.

    Hostnames repeat across a lab (every Raspberry Pi OS image is ``raspberrypi``), so the machine-id, unique
    per installation, is preferred. Only a hash leaves the host.
    """
    for path in (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id")):
        ident = _read_text(path)
        if ident:
            return hashlib.sha256(f"hwnas-host:{ident}".encode()).hexdigest()[:16]
    return hashlib.sha256(f"hwnas-host:{socket.gethostname()}:{uuid.getnode():012x}".encode()).hexdigest()[:16]


def physical_cores() -> int:
    """Distinct (physical id, core id) pairs; falls back to the logical count."""
    pairs, physical = set(), "0"
    for key, value in _cpuinfo_fields():
        if key == "physical id":
            physical = value
        elif key == "core id":
            pairs.add((physical, value))
    return len(pairs) or (os.cpu_count() or 1)


def memory_total_bytes() -> int:
    for line in _read_text(Path("/proc/meminfo")).splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def hostname() -> str:
    return socket.gethostname()


@dataclass(frozen=True)
class HostState:
    """The parts of the host that change a measurement, read just before it."""

    cpu_governor: str
    cpu_freq_mhz: float
    load_avg_1m: float
    load_avg_5m: float
    load_avg_15m: float
    gpu_name: str = ""  # the NVIDIA GPU NVML reads (HWNAS_NVML_DEVICE), if any
    gpu_sm_clock_mhz: float = 0.0
    gpu_temperature_c: float = 0.0


def read_state() -> HostState:
    freq_khz = _read_text(_CPUFREQ / "scaling_cur_freq")
    try:
        load = os.getloadavg()
    except OSError:
        load = (0.0, 0.0, 0.0)
    gpu_name, gpu_clock, gpu_temperature = gpu_state()
    return HostState(
        cpu_governor=_read_text(_CPUFREQ / "scaling_governor"),
        cpu_freq_mhz=int(freq_khz) / 1000 if freq_khz.isdigit() else 0.0,
        load_avg_1m=load[0],
        load_avg_5m=load[1],
        load_avg_15m=load[2],
        gpu_name=gpu_name,
        gpu_sm_clock_mhz=gpu_clock,
        gpu_temperature_c=gpu_temperature,
    )


def state_warnings(state: HostState) -> list[str]:
    """Conditions that make a latency figure less trustworthy, in words for the record."""
    warnings = []
    if state.cpu_governor and state.cpu_governor != "performance":
        warnings.append(f"cpu governor is {state.cpu_governor!r}, not 'performance': clocks may scale")
    return warnings
