"""Real agent processes: SIGTERM aborts or drains the running measurement; SIGKILL loses nothing."""

import hashlib
import signal
import threading
import time
from pathlib import Path

import grpc
import pytest

from hwnas.controller.fleet.client import CHUNK_BYTES, AgentCallError, AgentClient
from hwnas.controller.fleet.local_agent import LocalAgent
from hwnas.protos.hwnas.v1 import agent_pb2, agent_pb2_grpc
from tests.sync import AGENT_DEBUG as DEBUG
from tests.sync import logged, wait_for


def profile_in_background(address: str, sha: str, count: int) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run() -> None:
        with AgentClient(address) as client:
            try:
                outcome["record"] = client.profile(sha, protocol="fixed", protocol_params={"count": count})
            except AgentCallError as exc:
                outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_sigterm_aborts_the_running_measurement_and_reports_it(tmp_path: Path, medium_model: bytes) -> None:
    with LocalAgent(tmp_path / "cache", DEBUG) as agent, AgentClient(agent.address) as client:
        client.wait_ready()
        sha, _ = client.ensure_model(medium_model)
        running, first = profile_in_background(agent.address, sha, 1_000_000)
        logged(agent, "the timed window opens")
        queued, second = profile_in_background(agent.address, sha, 10)
        logged(agent, "1 call(s) hold or wait for the gate")  # the second call reached the agent
        t0 = time.perf_counter()
        assert agent.stop(signal.SIGTERM) == 0
        assert time.perf_counter() - t0 < 15
        running.join(30)
        queued.join(30)
    assert not running.is_alive() and not queued.is_alive(), "a call was still waiting 30 s after the stop"
    assert first["error"].code == grpc.StatusCode.UNAVAILABLE
    assert "measurement aborted" in first["error"].details and "stopped after" in first["error"].details
    assert second["error"].code == grpc.StatusCode.UNAVAILABLE and "shutting down" in second["error"].details
    assert any("stopped: the current measurement was aborted" in line for line in agent.output)


def test_sigterm_with_drain_lets_the_running_measurement_finish(tmp_path: Path, medium_model: bytes) -> None:
    with LocalAgent(tmp_path / "cache", ["--drain-seconds", "60", *DEBUG]) as agent, \
            AgentClient(agent.address) as client:
        client.wait_ready()
        sha, _ = client.ensure_model(medium_model)
        running, outcome = profile_in_background(agent.address, sha, 600)
        logged(agent, f"measuring {sha[:12]}")
        assert agent.stop(signal.SIGTERM) == 0
        running.join(10)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["record"].stats["count"] == 600
    assert any("stopped: the current measurement finished" in line for line in agent.output)


def test_sigkill_mid_upload_loses_nothing_and_leaves_no_partial_model(tmp_path: Path, tiny_model: bytes) -> None:
    cache = tmp_path / "cache"
    big = bytes(range(256)) * (12 * CHUNK_BYTES // 256)
    big_sha = hashlib.sha256(big).hexdigest()
    agent = LocalAgent(cache)
    with AgentClient(agent.address) as client:
        client.wait_ready()
        kept, _ = client.ensure_model(tiny_model)
    channel = grpc.insecure_channel(agent.address)
    stub = agent_pb2_grpc.DeviceAgentStub(channel)
    killed = threading.Event()

    def slow_chunks():
        yield agent_pb2.UploadModelChunk(header=agent_pb2.UploadHeader(sha256=big_sha, size_bytes=len(big)))
        for k, start in enumerate(range(0, len(big), CHUNK_BYTES)):
            if k == 4:
                killed.set()
                agent.process.kill()  # SIGKILL while the upload is half done
            yield agent_pb2.UploadModelChunk(data=big[start:start + CHUNK_BYTES])

    with pytest.raises(grpc.RpcError) as info:
        stub.UploadModel(slow_chunks(), timeout=30)
    assert agent.process.wait(10) == -signal.SIGKILL
    assert killed.is_set() and info.value.code() == grpc.StatusCode.UNAVAILABLE
    channel.close()
    assert any((cache / "incoming").iterdir()), "the killed agent should have left its partial upload"

    with LocalAgent(cache) as restarted, AgentClient(restarted.address) as client:
        client.wait_ready()
        assert not client.has_model(big_sha)
        assert client.has_model(kept)
        assert not any((cache / "incoming").iterdir())
        record = client.profile(kept, protocol="fixed", protocol_params={"count": 3})
        assert record.stats["count"] == 3


def test_a_call_queued_when_the_gate_closes_never_starts_even_if_the_holder_leaves_first() -> None:
    """SIGTERM closes the gate, then the running measurement ends: the call queued behind it must get
    UNAVAILABLE. It ran instead when the holder released its turn before the waiter woke (seen in CI)."""
    from hwnas.device_agent.errors import MeasurementStopped
    from hwnas.device_agent.fifo import FifoGate

    gate = FifoGate()
    holder = gate.turn(None, lambda: False)
    holder.__enter__()
    outcome: dict = {}

    def wait_turn() -> None:
        try:
            with gate.turn(None, lambda: False):
                outcome["ran"] = True
        except MeasurementStopped as exc:
            outcome["stopped"] = exc

    waiter = threading.Thread(target=wait_turn)
    waiter.start()
    wait_for(lambda: gate.depth == 2, "the second call to queue behind the holder")
    with gate._cond:  # close and release the turn before the waiter can look (the lock is reentrant)
        gate.close("the agent is shutting down")
        holder.__exit__(None, None, None)
    waiter.join(10)
    assert "ran" not in outcome and outcome["stopped"].status_code == "UNAVAILABLE"


def test_sigusr1_prints_every_threads_stack_and_the_agent_keeps_serving(tmp_path: Path) -> None:
    with LocalAgent(tmp_path / "cache") as agent, AgentClient(agent.address) as client:
        client.wait_ready()
        agent.process.send_signal(signal.SIGUSR1)
        wait_for(lambda: "most recent call first" in agent.stderr_text(), "the agent's stack dump")
        assert client.device_info().cached_models == 0


def test_an_agent_that_does_not_stop_is_killed_and_reported_with_its_stderr(tmp_path: Path) -> None:
    agent = LocalAgent(tmp_path / "cache")
    agent.process.send_signal(signal.SIGSTOP)  # a hung agent: it handles no signal but SIGKILL
    with pytest.raises(RuntimeError, match="did not stop within 1 s of SIGTERM; its stderr"):
        agent.stop(timeout_s=1)
    assert agent.process.returncode == -signal.SIGKILL


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="threads are listed in /proc on Linux only")
def test_sigterm_delivered_to_any_thread_of_the_agent_stops_it(tmp_path: Path) -> None:
    """The kernel hands a process's signal to any thread that does not block it. Python runs the handler in
    the main thread only when that thread next runs Python code, and the agent's main thread sat in an
    untimed wait: given to a gRPC thread, SIGTERM was never handled (seen under load in the suite)."""
    import ctypes
    import os

    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "tgkill"):
        pytest.skip("this C library has no tgkill")
    with LocalAgent(tmp_path / "cache") as agent, AgentClient(agent.address) as client:
        client.wait_ready()
        pid = agent.process.pid
        other = next(int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid)
        assert libc.tgkill(pid, other, signal.SIGTERM) == 0, ctypes.get_errno()
        assert agent.process.wait(60) == 0
