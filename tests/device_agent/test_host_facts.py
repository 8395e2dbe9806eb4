"""Host facts through psutil, and an agent on a host without /proc (macOS, Windows), simulated here."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from hwnas.controller.fleet.client import AgentClient
from hwnas.device_agent import host, interference
from hwnas.device_agent.backends.onnxruntime_backend import OnnxRuntimeBackend
from hwnas.device_agent.measure import MeasureOptions, measure

from ..conftest import start_agent


def test_this_linux_hosts_facts() -> None:
    assert host.cpu_model()
    assert host.physical_cores() == (_cpuinfo_cores() or psutil.cpu_count(logical=False))
    assert host.memory_total_bytes() == psutil.virtual_memory().total > 0
    state = host.read_state()
    assert state.load_avg_1m >= 0 and state.cpu_freq_mhz >= 0
    table = interference.process_cpu_seconds()
    assert os.getpid() in table and table[os.getpid()][1] > 0


def _cpuinfo_cores() -> int:
    """Distinct (physical id, core id) pairs of /proc/cpuinfo: a reading independent of psutil (0 on boards
    whose cpuinfo has no such fields)."""
    pairs, physical = set(), "0"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "physical id":
            physical = value
        elif key == "core id":
            pairs.add((physical, value))
    return len(pairs)


@pytest.fixture
def no_proc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A FAKE host without /proc or /sys: psutil's procfs root and the agent's own /proc and /sys paths point at
    an empty folder, so every Linux-specific read fails as it would on macOS or Windows."""
    empty = tmp_path / "no-such-root"
    monkeypatch.setattr(psutil, "PROCFS_PATH", str(empty))
    monkeypatch.setattr(host, "_PROC", empty)
    monkeypatch.setattr(host, "_CPUFREQ", empty / "cpufreq")
    return empty


def test_without_proc_the_facts_are_empty_not_errors(no_proc: Path) -> None:
    with pytest.raises(host.PSUTIL_ERRORS):
        psutil.virtual_memory()  # the simulation holds: psutil itself cannot read the host
    assert host.cpu_model()  # the platform's own string
    assert host.physical_cores() >= 1
    assert host.memory_total_bytes() == 0
    assert host.read_state().cpu_governor == ""
    assert interference.process_cpu_seconds() == {}


def test_an_agent_without_proc_starts_and_measures(no_proc: Path, tmp_path: Path, tiny_model: bytes) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(tiny_model)
    m = measure(OnnxRuntimeBackend().load(path, threads=1),
                MeasureOptions(protocol="fixed", protocol_params={"count": 50.0}), None)
    assert m.latency_ms > 0 and m.stats.count == 50
    assert not any("other processes" in w for w in m.warnings)
    agent = start_agent(tmp_path / "cache")
    try:
        with AgentClient(agent.address) as client:
            info = client.device_info()
            assert info.cpu_model and info.cpu_cores_physical >= 1
            sha, _ = client.ensure_model(tiny_model)
            assert client.profile(sha, protocol="fixed", protocol_params={"count": 20}).latency_ms > 0
    finally:
        agent.stop()
