"""A model that never finishes cannot hold an agent: deadlines, cancellation and SIGTERM reach binding too.

Binding runs one untimed inference (it surfaces shape errors); a Loop bomb makes that inference endless.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hwnas.controller.fleet.client import AgentCallError, AgentClient
from hwnas.controller.fleet.local_agent import LocalAgent
from hwnas.device_agent import server as agent_server
from hwnas.device_agent.backends import BACKENDS
from hwnas.device_agent.backends.base import Backend, InputSpec, LoadedModel
from hwnas.device_agent.power.base import Availability
from tests.sync import AGENT_DEBUG, logged, wait_for

from ..conftest import start_agent
from .hostile_models import loop_bomb
from .test_bad_input import still_serves


def test_a_loop_bomb_is_stopped_at_its_deadline_while_binding(client: AgentClient, tiny_model: bytes) -> None:
    sha, _ = client.ensure_model(loop_bomb())
    t0 = time.perf_counter()
    with pytest.raises(AgentCallError) as info:
        client.profile(sha, deadline_seconds=2, timeout_s=60)
    assert time.perf_counter() - t0 < 15
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED, info.value
    assert "deadline of 2 s" in info.value.details and "while binding" in info.value.details
    still_serves(client, tiny_model)


def test_a_cancelled_call_stops_a_loop_bomb(client: AgentClient, tiny_model: bytes) -> None:
    sha, _ = client.ensure_model(loop_bomb())
    with pytest.raises(AgentCallError) as info:
        client.profile(sha, timeout_s=2)  # the client's own deadline: the agent sees a cancellation
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    t0 = time.perf_counter()
    still_serves(client, tiny_model)  # queued behind the bomb until it is stopped
    assert time.perf_counter() - t0 < 15


def test_sigterm_stops_an_agent_busy_with_a_loop_bomb(tmp_path: Path) -> None:
    with LocalAgent(tmp_path / "cache", AGENT_DEBUG) as agent, AgentClient(agent.address) as client:
        client.wait_ready()
        sha, _ = client.ensure_model(loop_bomb())
        outcome: dict = {}

        def run() -> None:
            try:
                client.profile(sha, timeout_s=120)
            except AgentCallError as exc:
                outcome["error"] = exc

        caller = threading.Thread(target=run)
        caller.start()
        logged(agent, f"measuring {sha[:12]}")
        t0 = time.perf_counter()
        assert agent.stop(signal.SIGTERM, timeout_s=30) == 0
        assert time.perf_counter() - t0 < 15
        caller.join(30)
    assert outcome["error"].code == grpc.StatusCode.UNAVAILABLE, outcome["error"]
    assert any("measurement was aborted" in line for line in agent.output), agent.output


class StubbornModel(LoadedModel):
    """A runtime that cannot be interrupted (as LiteRT and eager PyTorch cannot): its abort does nothing.

    A stand-in for such a runtime stuck in a hostile model, so the test needs no TFLite conversion.
    """

    threads = 1
    watch_host = False
    release = threading.Event()

    @property
    def inputs(self) -> list[InputSpec]:
        return [InputSpec("input", (1,), "float32")]

    def bind(self, shapes: dict[str, tuple[int, ...]]) -> Callable[[], None]:
        StubbornModel.release.wait(60)
        return lambda: None


class StubbornBackend(Backend):
    name = "stubborn"
    runtime_name = "stubborn (test stand-in)"

    @classmethod
    def probe(cls) -> Availability:
        return Availability(True, "test stand-in")

    @classmethod
    def runtime_version(cls) -> str:
        return "0"

    def load(self, model_path: Path, threads: int) -> StubbornModel:
        return StubbornModel()


def _health(address: str) -> int:
    with grpc.insecure_channel(address) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status


def test_health_is_not_serving_while_a_measurement_overruns_its_deadline(tmp_path: Path, tiny_model: bytes,
                                                                         monkeypatch) -> None:
    monkeypatch.setitem(BACKENDS, "stubborn", f"{__name__}:StubbornBackend")
    monkeypatch.setattr(agent_server, "OVERRUN_GRACE_S", 0.5)
    StubbornModel.release.clear()
    server = start_agent(tmp_path / "cache", backends=["onnxruntime", "stubborn"])
    try:
        with AgentClient(server.address) as client:
            sha, _ = client.ensure_model(tiny_model)
            outcome: dict = {}

            def run() -> None:
                try:
                    client.profile(sha, backend="stubborn", deadline_seconds=1, timeout_s=60)
                except AgentCallError as exc:
                    outcome["error"] = exc

            caller = threading.Thread(target=run)
            caller.start()
            serving = health_pb2.HealthCheckResponse.SERVING
            assert _health(server.address) == serving
            wait_for(lambda: _health(server.address) != serving, "the agent to stop serving health")
            assert _health(server.address) == health_pb2.HealthCheckResponse.NOT_SERVING
            StubbornModel.release.set()
            caller.join(30)
            assert outcome["error"].code == grpc.StatusCode.DEADLINE_EXCEEDED
            assert _health(server.address) == serving
            still_serves(client, tiny_model)
    finally:
        StubbornModel.release.set()
        server.stop()


def test_a_stop_that_reaches_the_runtime_after_its_measurement_ended_leaves_the_next_one_alone(
        tmp_path: Path, medium_model: bytes) -> None:
    """A deadline's stop runs its callbacks outside the token's lock; on a busy host they can run after that
    measurement ended and the next one began. The late abort used to set ONNX Runtime's terminate flag on the
    next measurement's run options ("Exiting due to terminate flag being set to true", seen in CI)."""
    from hwnas.device_agent.backends.onnxruntime_backend import OnnxRuntimeBackend
    from hwnas.device_agent.measure import MeasureOptions, StopToken, measure

    path = tmp_path / "m.onnx"
    path.write_bytes(medium_model)
    model = OnnxRuntimeBackend().load(path, 1)
    options = MeasureOptions(protocol="fixed", protocol_params={"count": 3})

    class Recording(StopToken):
        aborts: list[Callable[[], None]] = []

        def on_stop(self, callback: Callable[[], None]) -> None:
            Recording.aborts.append(callback)
            super().on_stop(callback)

    measure(model, options, None, token=Recording())  # the first measurement; its abort is kept

    class LateAbort(StopToken):
        def on_stop(self, callback: Callable[[], None]) -> None:  # the second one has just re-armed the runtime
            Recording.aborts[0]()  # the first one's stop arrives now
            super().on_stop(callback)

    second = measure(model, options, None, token=LateAbort())
    assert len(second.samples_ns) == 3


def test_the_controller_ends_a_profile_whose_runtime_ignores_its_deadline_and_says_so(
        tmp_path: Path, tiny_model: bytes, monkeypatch) -> None:
    """`hwnas profile --deadline 5` waited for ever (600 s) on a runtime that cannot be interrupted."""
    from hwnas.controller.fleet import client as fleet_client

    monkeypatch.setitem(BACKENDS, "stubborn", f"{__name__}:StubbornBackend")
    monkeypatch.setattr(fleet_client, "DEADLINE_GRACE_S", 1.0)
    StubbornModel.release.clear()
    server = start_agent(tmp_path / "cache", backends=["onnxruntime", "stubborn"])
    try:
        with AgentClient(server.address) as client:
            sha, _ = client.ensure_model(tiny_model)
            t0 = time.perf_counter()
            with pytest.raises(AgentCallError) as info:
                client.profile(sha, backend="stubborn", deadline_seconds=1)
            waited = time.perf_counter() - t0
        assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
        assert "no answer within the 1 s deadline and 1 s of grace" in info.value.details
        assert waited < 30  # the stand-in holds for 60 s; the controller stopped at about 2 s
    finally:
        StubbornModel.release.set()
        server.stop()


def test_a_nan_deadline_is_invalid_argument(client: AgentClient, tiny_model: bytes) -> None:
    """deadline_seconds NaN gave DEADLINE_EXCEEDED (the deadline passed at once) instead of INVALID_ARGUMENT."""
    sha, _ = client.ensure_model(tiny_model)
    with pytest.raises(AgentCallError) as info:
        client.profile(sha, deadline_seconds=float("nan"), timeout_s=30)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT and "deadline_seconds" in info.value.details
    still_serves(client, tiny_model)
