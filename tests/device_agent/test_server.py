"""The agent over real gRPC on 127.0.0.1: info, upload, profile, queueing, health, reflection."""

import hashlib
import threading

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from hwnas.controller.fleet.client import AgentClient
from hwnas.controller.graph import GraphBuilder
from hwnas.controller.graph.onnx_export import to_onnx_bytes
from hwnas.device_agent.power import POWER_SOURCES
from tests.sync import wait_for


def test_device_info_describes_the_host(client: AgentClient) -> None:
    info = client.device_info()
    assert info.agent_name == "test-agent" and info.agent_version
    assert info.hostname and info.cpu_model and info.cpu_cores_logical >= 1 and info.memory_total_bytes > 0
    assert info.os and info.python_version.startswith("3.")
    assert list(info.backends) == ["onnxruntime"]
    assert {r.name for r in info.runtimes} == {"onnxruntime"} and info.runtimes[0].version
    assert {"latbench", "fixed", "adaptive"} <= set(info.protocols)
    assert [p.name for p in info.power_sources] == list(POWER_SOURCES) and all(p.detail for p in info.power_sources)
    assert info.cache_capacity_bytes > 0 and info.cache_free_bytes > 0


def test_upload_once_then_skip(client: AgentClient, tiny_model: bytes) -> None:
    sha, uploaded = client.ensure_model(tiny_model)
    assert uploaded and sha == hashlib.sha256(tiny_model).hexdigest()
    assert client.has_model(sha)
    assert client.ensure_model(tiny_model) == (sha, False)
    assert client.device_info().cached_models == 1


def test_a_model_larger_than_one_message_travels_in_chunks(client: AgentClient) -> None:
    b = GraphBuilder((1, 2048))
    b.linear(b.linear(b.input, 1024), 10)  # ~8.4 MB of weights: over gRPC's 4 MiB message cap
    model = to_onnx_bytes(b.build())
    assert len(model) > 8 << 20
    sha, _ = client.ensure_model(model)
    record = client.profile(sha, protocol="fixed", protocol_params={"count": 5})
    assert record.stats["count"] == 5


def test_profile_reports_the_protocol_statistics_and_environment(client: AgentClient, tiny_model: bytes) -> None:
    sha, _ = client.ensure_model(tiny_model)
    record = client.profile(sha, protocol="latbench", protocol_params={"runs": 20, "per_run": 5},
                            return_samples=True, threads=1)
    r = record.result
    assert r["protocol"] == "latbench" and r["protocol_params"] == {"runs": 20.0, "per_run": 5.0}
    s = r["stats"]
    assert s["count"] == 100 == len(r["samples_ms"])
    assert 0 < s["min_ms"] <= s["median_ms"] <= s["p90_ms"] <= s["p99_ms"] <= s["max_ms"]
    assert s["mean_ms"] == pytest.approx(np.mean(r["samples_ms"]))
    assert s["min_ms"] <= r["latency_ms"] <= s["max_ms"]
    assert r["warmup_runs_done"] == 10  # the protocol's default warm-up, not mixed into the samples
    assert r["environment"]["threads"] == 1 and r["environment"]["runtime"] == "onnxruntime"
    assert r["environment"]["runtime_version"]
    assert r["input_shapes"] == [{"name": "input", "dims": [1, 3, 32, 32]}]
    assert not r["power"]["available"] and r["power"]["unavailable_reason"]
    assert r["agent_name"] == "test-agent" and r["started_unix_ns"] <= r["finished_unix_ns"]


def test_warmup_seconds_runs_at_least_that_long(client: AgentClient, tiny_model: bytes) -> None:
    sha, _ = client.ensure_model(tiny_model)
    record = client.profile(sha, protocol="fixed", protocol_params={"count": 5}, warmup_runs=0, warmup_seconds=0.3)
    assert record.result["measurement_wall_ms"] >= 300
    assert record.result["warmup_runs_done"] > 5 and record.stats["count"] == 5


def test_concurrent_profiles_run_one_at_a_time_in_arrival_order(agent, client: AgentClient,
                                                                 medium_model: bytes) -> None:
    sha, _ = client.ensure_model(medium_model)
    results: dict[int, dict] = {}

    def call(k: int) -> None:
        results[k] = client.profile(sha, protocol="fixed", protocol_params={"count": 60}).result

    threads = []
    with agent.servicer.gate.turn(None, lambda: False):  # the test holds the agent's turn: every call queues
        for k in range(4):
            threads.append(threading.Thread(target=call, args=(k,)))
            threads[-1].start()
            # the next call starts only once this one holds its place in the queue: that defines arrival
            wait_for(lambda n=k + 2: agent.servicer.gate.depth >= n, f"call {k} to reach the agent's queue")
    for t in threads:
        t.join(60)
    windows = sorted((int(r["started_unix_ns"]), int(r["finished_unix_ns"]), k) for k, r in results.items())
    assert [k for _, _, k in windows] == [0, 1, 2, 3], "served out of arrival order"
    for (_, end, _), (start, _, _) in zip(windows, windows[1:], strict=False):
        assert end <= start, "two measurements overlapped"
    waits = [results[k]["queue_wait_ms"] for k in range(4)]
    assert all(w > 0 for w in waits), waits


def test_health_and_reflection(agent) -> None:
    channel = grpc.insecure_channel(agent.address)
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "hwnas.v1.DeviceAgent"):
        status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"hwnas.v1.DeviceAgent", "grpc.health.v1.Health"} <= names
    channel.close()


def test_adaptive_protocol_details_cross_the_wire(client: AgentClient, tiny_model: bytes) -> None:
    sha, _ = client.ensure_model(tiny_model)
    r = client.profile(sha, protocol="adaptive", protocol_params={"max_blocks": 20}).result
    details = r["protocol_details"]
    assert set(details) == {"blocks", "samples", "ci95_half_width_ms", "ci95_rel", "converged"}
    assert r["stats"]["count"] == 10 * details["blocks"] and 10 <= details["blocks"] <= 20


def test_a_second_agent_on_a_port_in_use_refuses_to_start_naming_the_port(tmp_path) -> None:
    """gRPC's default SO_REUSEPORT would let both serve; one device key would collect two runtimes' rows."""
    import subprocess
    import sys

    from hwnas.controller.fleet.local_agent import LocalAgent

    with LocalAgent(tmp_path / "a") as first:
        port = first.address.rsplit(":", 1)[1]
        second = subprocess.run(
            [sys.executable, "-m", "hwnas.device_agent", "serve", "--host", "127.0.0.1", "--port", port, "--insecure",
             "--cache-dir", str(tmp_path / "b")], capture_output=True, text=True, timeout=60)
        assert second.returncode == 2, second.stdout
        assert f"127.0.0.1:{port}" in second.stderr and "in use" in second.stderr, second.stderr
        with AgentClient(first.address) as client:
            assert client.device_info().cache_used_bytes == 0  # the first one still answers


def test_an_unknown_backend_at_start_is_one_line_naming_the_known_ones(tmp_path) -> None:
    import subprocess
    import sys

    started = subprocess.run([sys.executable, "-m", "hwnas.device_agent", "serve", "--backend", "nope", "--insecure",
                              "--port", "0", "--cache-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
    from hwnas.device_agent.backends import BACKENDS

    assert started.returncode == 2
    assert started.stderr.strip().splitlines() == [f"hwnas-agent: unknown backend 'nope'; known: {sorted(BACKENDS)}"]
