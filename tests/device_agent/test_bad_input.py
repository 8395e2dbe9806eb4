"""Every bad input gets a gRPC status with a message saying what was wrong, and the agent keeps serving.

One test per case, each against a real agent on 127.0.0.1; each ends by profiling a good model.
"""

import hashlib
import time

import grpc
import onnx
import pytest
from onnx import TensorProto, helper

from hwnas.controller.fleet.client import AgentCallError, AgentClient
from hwnas.device_agent.backends import BACKENDS
from hwnas.protos.hwnas.v1 import agent_pb2, agent_pb2_grpc
from tests.sync import wait_for

from ..conftest import start_agent


def still_serves(client: AgentClient, model: bytes) -> None:
    sha, _ = client.ensure_model(model)
    assert client.profile(sha, protocol="fixed", protocol_params={"count": 3}).stats["count"] == 3


def expect(code: grpc.StatusCode, match: str, call, *args, **kwargs) -> AgentCallError:
    with pytest.raises(AgentCallError) as info:
        call(*args, **kwargs)
    assert info.value.code == code, info.value
    assert match in info.value.details, info.value.details
    return info.value


def test_bytes_that_are_not_onnx(client: AgentClient, tiny_model: bytes) -> None:
    sha, _ = client.ensure_model(b"this is not a model" * 10)
    expect(grpc.StatusCode.INVALID_ARGUMENT, "not an ONNX model", client.profile, sha)
    still_serves(client, tiny_model)


def test_onnx_that_onnxruntime_refuses(client: AgentClient, tiny_model: bytes) -> None:
    node = helper.make_node("NoSuchOp", ["x"], ["y"], domain="com.example")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20),
                                                    helper.make_opsetid("com.example", 1)])
    sha, _ = client.ensure_model(model.SerializeToString())
    expect(grpc.StatusCode.INVALID_ARGUMENT, "onnxruntime refused the model", client.profile, sha)
    still_serves(client, tiny_model)


def test_profiling_a_hash_never_uploaded(client: AgentClient, tiny_model: bytes) -> None:
    expect(grpc.StatusCode.NOT_FOUND, "upload it first", client.profile, "ab" * 32)
    still_serves(client, tiny_model)


def test_a_chunk_stream_whose_sha256_does_not_match(client: AgentClient, tiny_model: bytes) -> None:
    wrong = hashlib.sha256(b"something else").hexdigest()
    expect(grpc.StatusCode.DATA_LOSS, "sha256 of the received bytes", client.upload, tiny_model, sha256=wrong)
    assert not client.has_model(wrong)
    still_serves(client, tiny_model)


def test_a_model_over_the_cache_cap(tmp_path, tiny_model: bytes, medium_model: bytes) -> None:
    server = start_agent(tmp_path / "cache", cache_capacity_bytes=len(tiny_model) + 100)
    try:
        with AgentClient(server.address) as client:
            expect(grpc.StatusCode.FAILED_PRECONDITION, "exceeds the agent's cache capacity",
                   client.upload, medium_model)
            still_serves(client, tiny_model)
    finally:
        server.stop()


def test_a_measurement_past_its_deadline_is_stopped(client: AgentClient, medium_model: bytes) -> None:
    sha, _ = client.ensure_model(medium_model)
    t0 = time.perf_counter()
    error = expect(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline of 0.5 s", client.profile, sha,
                   protocol="fixed", protocol_params={"count": 1_000_000}, deadline_seconds=0.5)
    assert time.perf_counter() - t0 < 5
    assert "stopped after" in error.details
    assert_the_run_was_stopped(client, sha)


def test_the_callers_grpc_deadline_stops_the_run(client: AgentClient, medium_model: bytes) -> None:
    sha, _ = client.ensure_model(medium_model)
    expect(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline", client.profile, sha,
           protocol="fixed", protocol_params={"count": 1_000_000}, timeout_s=0.5)
    assert_the_run_was_stopped(client, sha)


def assert_the_run_was_stopped(client: AgentClient, sha: str) -> None:
    """The next call does not queue behind the stopped 1,000,000-run measurement (minutes had it gone on);
    it waits at most for the runtime to notice the stop, a bound far from the margin on any loaded machine."""
    record = client.profile(sha, protocol="fixed", protocol_params={"count": 3})
    assert record.result["queue_wait_ms"] < 10_000


@pytest.mark.parametrize("shapes, match", [
    ({"input": (1, 3, 64, 64)}, "dim 2 is fixed at 32"),
    ({"input": (1, 3, 32)}, "has rank 4"),
    ({"image": (1, 3, 32, 32)}, "the model's inputs are ['input']"),
    ({"input": (1, 0, 32, 32)}, "must be positive dims"),
])
def test_input_shapes_that_do_not_match_the_model(client: AgentClient, tiny_model: bytes, shapes, match) -> None:
    sha, _ = client.ensure_model(tiny_model)
    expect(grpc.StatusCode.INVALID_ARGUMENT, match, client.profile, sha, input_shapes=shapes)
    still_serves(client, tiny_model)


def test_a_batch_size_the_model_fixes_otherwise(client: AgentClient, tiny_model: bytes) -> None:
    sha, _ = client.ensure_model(tiny_model)
    expect(grpc.StatusCode.INVALID_ARGUMENT, "fixed batch dimension 1", client.profile, sha, batch_size=8)


def test_an_unknown_backend(client: AgentClient, tiny_model: bytes) -> None:
    sha, _ = client.ensure_model(tiny_model)
    expect(grpc.StatusCode.INVALID_ARGUMENT, f"unknown backend 'tensorrt'; known: {sorted(BACKENDS)}",
           client.profile, sha, backend="tensorrt")
    still_serves(client, tiny_model)


def test_an_unknown_protocol_or_parameter(client: AgentClient, tiny_model: bytes) -> None:
    sha, _ = client.ensure_model(tiny_model)
    expect(grpc.StatusCode.INVALID_ARGUMENT, "unknown protocol 'nope'", client.profile, sha, protocol="nope")
    expect(grpc.StatusCode.INVALID_ARGUMENT, "has no parameter(s) ['repeats']", client.profile, sha,
           protocol="latbench", protocol_params={"repeats": 3})
    still_serves(client, tiny_model)


def test_malformed_hash_and_header_less_upload(agent, tiny_model: bytes) -> None:
    channel = grpc.insecure_channel(agent.address)
    stub = agent_pb2_grpc.DeviceAgentStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        stub.HasModel(agent_pb2.HasModelRequest(sha256="xyz"), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "64 lower-case hex" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        stub.UploadModel(iter([agent_pb2.UploadModelChunk(data=b"abc")]), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "must carry the header" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        header = agent_pb2.UploadHeader(sha256=hashlib.sha256(b"x" * (2 << 20)).hexdigest(), size_bytes=2 << 20)
        stub.UploadModel(iter([agent_pb2.UploadModelChunk(header=header),
                               agent_pb2.UploadModelChunk(data=b"x" * ((1 << 20) + 1))]), timeout=5)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "exceeds 1048576 bytes" in info.value.details()
    channel.close()
    with AgentClient(agent.address) as client:
        still_serves(client, tiny_model)


def test_negative_options_are_refused_before_queueing(client: AgentClient, tiny_model: bytes) -> None:
    sha, _ = client.ensure_model(tiny_model)
    expect(grpc.StatusCode.INVALID_ARGUMENT, "warmup_runs must be >= 0", client.profile, sha, warmup_runs=-1)
    expect(grpc.StatusCode.INVALID_ARGUMENT, "threads must be 0", client.profile, sha, threads=-2)


def test_onnx_checker_accepts_the_refused_model_shape() -> None:
    """Guards the test above: its model is valid ONNX, so the refusal is onnxruntime's."""
    node = helper.make_node("NoSuchOp", ["x"], ["y"], domain="com.example")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    onnx.checker.check_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20),
                                                                     helper.make_opsetid("com.example", 1)]))


def test_a_runtime_failing_mid_measurement_is_internal_and_the_agent_keeps_serving(
        agent, client: AgentClient, tiny_model: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """FAKE failure injected at the runtime boundary: the loaded model's run raises after binding."""
    from hwnas.device_agent.backends.onnxruntime_backend import OrtLoadedModel

    real_bind = OrtLoadedModel.bind

    def failing_bind(self, shapes):
        real_bind(self, shapes)

        def run_once() -> None:
            raise RuntimeError("device lost")

        return run_once

    monkeypatch.setattr(OrtLoadedModel, "bind", failing_bind)
    sha, _ = client.ensure_model(tiny_model)
    expect(grpc.StatusCode.INTERNAL, "measurement failed in onnxruntime: device lost", client.profile, sha)
    monkeypatch.undo()
    still_serves(client, tiny_model)


def test_ids_with_a_trailing_newline_are_refused(client: AgentClient, tiny_model: bytes) -> None:
    """``re.match`` with ``^...$`` accepts 'id\\n'; every id check is a full match."""
    sha = hashlib.sha256(tiny_model).hexdigest()
    expect(grpc.StatusCode.INVALID_ARGUMENT, "64 lower-case hex", client.has_model, sha + "\n")
    expect(grpc.StatusCode.INVALID_ARGUMENT, "64 lower-case hex", client.upload, tiny_model, sha256=sha + "\n")
    still_serves(client, tiny_model)
    expect(grpc.StatusCode.INVALID_ARGUMENT, "64 lower-case hex", client.profile, sha + "\n")


def test_threads_above_the_hosts_cores_are_refused(client: AgentClient, tiny_model: bytes) -> None:
    """threads=100000 segfaulted the agent and 1000 wedged it."""
    import os

    sha, _ = client.ensure_model(tiny_model)
    cores = os.cpu_count()
    for threads in (cores + 1, 1000, 100_000):
        expect(grpc.StatusCode.INVALID_ARGUMENT, f"0 (the runtime's default) to {cores}", client.profile, sha,
               threads=threads)
    assert client.profile(sha, protocol="fixed", protocol_params={"count": 3}, threads=cores).stats["count"] == 3


def test_stalled_uploads_count_against_the_cache_cap_and_leave_nothing_behind(tmp_path) -> None:
    """Six stalled 15 MB uploads left 88 MB in incoming/ against a 20 MB cap."""
    import threading

    from hwnas.controller.fleet.client import CHUNK_BYTES

    cap, size = 20 << 20, 15 << 20
    server = start_agent(tmp_path / "cache", cache_capacity_bytes=cap)
    release = threading.Event()
    payload = bytes(size)
    sha = hashlib.sha256(payload).hexdigest()

    def stalled():
        yield agent_pb2.UploadModelChunk(header=agent_pb2.UploadHeader(sha256=sha, size_bytes=size))
        yield agent_pb2.UploadModelChunk(data=payload[:CHUNK_BYTES])
        release.wait(60)  # then the stream ends short: the agent must drop the partial file

    try:
        channel = grpc.insecure_channel(server.address)
        stub = agent_pb2_grpc.DeviceAgentStub(channel)
        future = stub.UploadModel.future(stalled(), timeout=60)
        incoming = tmp_path / "cache" / "incoming"
        wait_for(lambda: any(incoming.iterdir()), "the stalled upload to start its partial file")
        with AgentClient(server.address) as client:
            assert client.device_info().cache_free_bytes <= cap - size
            other = bytes(range(256)) * (size // 256)
            expect(grpc.StatusCode.RESOURCE_EXHAUSTED, "uploads in progress", client.upload, other)
            release.set()
            with pytest.raises(grpc.RpcError) as info:
                future.result(timeout=30)
            assert info.value.code() == grpc.StatusCode.DATA_LOSS
            assert list(incoming.iterdir()) == []
            client.upload(other)  # the reservation is gone with the failed upload
            assert client.device_info().cached_models == 1
        channel.close()
    finally:
        release.set()
        server.stop()


def test_an_input_larger_than_the_host_can_hold_is_invalid_argument(client: AgentClient, tiny_model: bytes) -> None:
    """1x3x50000x50000 floats are 28 GiB: it answered INTERNAL (a MemoryError) where INVALID_ARGUMENT is promised."""
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, None, None])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, None, None])])
    sha, _ = client.ensure_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
                                 .SerializeToString())
    error = expect(grpc.StatusCode.INVALID_ARGUMENT, "this agent accepts at most", client.profile, sha,
                   input_shapes={"x": (1, 3, 50000, 50000)})
    assert "27.9 GiB" in error.details
    still_serves(client, tiny_model)


def test_errors_never_show_clients_the_agents_cache_path(agent, client: AgentClient, tiny_model: bytes) -> None:
    sha, _ = client.ensure_model(b"this is not a model" * 10)
    error = expect(grpc.StatusCode.INVALID_ARGUMENT, "not an ONNX model", client.profile, sha)
    root = str(agent.servicer.cache.root)
    assert root not in error.details and f"model {sha}" in error.details, error.details
    still_serves(client, tiny_model)


def test_an_empty_upload_is_refused(client: AgentClient, tiny_model: bytes) -> None:
    """A 0-byte upload was accepted and cached."""
    empty = hashlib.sha256(b"").hexdigest()
    expect(grpc.StatusCode.INVALID_ARGUMENT, "size_bytes must be > 0", client.upload, b"", sha256=empty)
    assert not client.has_model(empty)
    still_serves(client, tiny_model)
