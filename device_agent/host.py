"""What the agent can read about its host: static facts and the state at run time, on Linux, macOS and Windows.

Portable facts (cores, frequency, memory, load) come from psutil. The CPU's model name comes from where each
OS keeps it (/proc/cpuinfo, macOS's sysctl, the platform's processor string), and the frequency governor
from Linux's /sys. Anything that is missing or unreadable yields an empty value, never a guess, and no host
fact ever stops a measurement: an agent on a host without /proc starts and measures.
"""

from __future__ import annotations

import hashlib
import os
import platform
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import psutil

from hwnas.device_agent.gpu import gpu_state

_PROC = Path("/proc")
_CPUFREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq")
# What psutil raises where the OS does not expose a fact (no /proc, no permission, not implemented here).
PSUTIL_ERRORS = (psutil.Error, OSError, RuntimeError, NotImplementedError, AttributeError)
T = TypeVar("T")


def ask_psutil(read: Callable[[], T], default: T) -> T:
    """``read()``, or ``default`` where the host does not tell."""
    try:
        value = read()
    except PSUTIL_ERRORS:
        return default
    return default if value is None else value


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _cpuinfo_fields() -> list[tuple[str, str]]:
    fields = []
    for line in _read_text(_PROC / "cpuinfo").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.append((key.strip(), value.strip()))
    return fields


def cpu_model() -> str:
    """'model name' on x86 Linux, 'Model'/'Hardware' on ARM boards such as the Raspberry Pi, the brand string on
    macOS; elsewhere (Windows) what the platform says."""
    fields = _cpuinfo_fields()
    for wanted in ("model name", "Model", "Hardware", "cpu model"):
        for key, value in fields:
            if key == wanted and value:
                return value
    if sys.platform == "darwin":
        try:
            brand = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                   timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            brand = ""
        if brand:
            return brand
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
    """Physical cores (psutil); the logical count where the host does not say."""
    return ask_psutil(lambda: psutil.cpu_count(logical=False), 0) or os.cpu_count() or 1


def memory_total_bytes() -> int:
    return ask_psutil(lambda: psutil.virtual_memory().total, 0)


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
    frequency = ask_psutil(psutil.cpu_freq, None)
    load = ask_psutil(psutil.getloadavg, (0.0, 0.0, 0.0))
    gpu_name, gpu_clock, gpu_temperature = gpu_state()
    return HostState(
        cpu_governor=_read_text(_CPUFREQ / "scaling_governor"),  # Linux only
        cpu_freq_mhz=float(frequency.current) if frequency is not None else 0.0,
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
