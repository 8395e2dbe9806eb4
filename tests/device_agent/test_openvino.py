"""The OpenVINO backend on this x86 host's CPU: outputs against onnxruntime for every space, records through a
real agent beside an onnxruntime one in one campaign, and the refusals a lab user meets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest

from hwnas.controller.cli.main import main
from hwnas.controller.fleet.local_agent import LocalAgent
from hwnas.controller.graph.onnx_export import to_onnx_bytes
from hwnas.controller.spaces import SPACES, get_space
from hwnas.controller.store import Store

from ..conftest import start_agent
from ..controller.test_graph_ir import every_op_graph
from .test_bad_input import expect

ov = pytest.importorskip("openvino", reason="the agent-openvino extra (openvino) is not installed")


def _outputs(data: bytes, *xs: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(OpenVINO at f32, onnxruntime) outputs of the ONNX model ``data`` on its inputs ``xs``, in order."""
    import onnxruntime as ort

    compiled = ov.Core().compile_model(ov.Core().read_model(data, b""), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = compiled(dict(enumerate(xs)))
    ours = [got[port] for port in compiled.outputs]
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return ours, session.run(None, {i.name: x for i, x in zip(session.get_inputs(), xs, strict=True)})


@pytest.mark.parametrize("space", sorted(SPACES))
def test_openvino_computes_what_onnxruntime_computes_for_every_space(space: str) -> None:
    s = get_space(space)
    rng = np.random.default_rng(11)
    for x in (s.sample(rng) for _ in range(2)):
        if not s.has_network(x):
            continue
        graph = s.to_graph(x)
        data = to_onnx_bytes(graph)
        inputs = [rng.standard_normal(shape).astype(np.float32) for shape in graph.input_shapes]
        for got, expected in zip(*_outputs(data, *inputs), strict=True):
            np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


def test_every_op_of_the_ir_runs_on_openvino() -> None:
    graph = every_op_graph()
    data = to_onnx_bytes(graph)
    x = np.random.default_rng(0).standard_normal(graph.input_shape).astype(np.float32)
    for got, expected in zip(*_outputs(data, x), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


def test_a_record_names_the_device_hint_streams_and_precision(tmp_path: Path) -> None:
    from hwnas.controller.fleet.client import AgentClient, ProfileSpec

    space = get_space("nb201")
    data = to_onnx_bytes(space.to_graph(space.sample(np.random.default_rng(3))))
    agent = start_agent(tmp_path / "c", backends=["openvino"],
                        backend_options={"openvino": {"device": "cpu", "precision": "f32", "streams": "1"}})
    try:
        with AgentClient(agent.address) as client:
            assert list(client.device_info().backends) == ["openvino"]
            sha, _ = client.ensure_model(data)
            result = client.profile(sha, ProfileSpec(backend="openvino", protocol="fixed",
                                                     protocol_params={"count": 20})).result
            profiled = client.profile(sha, ProfileSpec(backend="openvino", protocol="fixed",
                                                       protocol_params={"count": 5}, op_profile=True)).result
            ops = profiled["op_profile"]  # OpenVINO's performance counters, per executed node (#37)
            assert ops and all(op["time_ms"] >= 0 and op["op_type"] for op in ops)
            assert "Convolution" in {op["op_type"] for op in ops}
            expect(grpc.StatusCode.INVALID_ARGUMENT, "OpenVINO refused the model",
                   client.profile, client.ensure_model(b"not a model at all" * 4)[0],
                   ProfileSpec(backend="openvino"))
    finally:
        agent.stop()
    env = result["environment"]
    assert result["backend"] == "openvino" and env["runtime"] == "openvino" and result["latency_ms"] > 0
    assert result["load_ms"] > 0 and result["first_inference_ms"] > 0 and result["model_bytes"] == len(data)
    settings = env["runtime_settings"]
    assert settings["device"] == "CPU" and settings["performance_hint"] == "LATENCY"
    assert settings["num_streams"] == "1" and settings["inference_precision_hint"] == "f32"
    assert env["threads"] == int(settings["inference_num_threads"]) >= 1


def test_one_campaign_profiles_the_same_sample_on_onnxruntime_and_openvino_agents(tmp_path: Path) -> None:
    """Issue #23's "done when": one `latbench build`, two runtimes of this machine, records naming each."""
    db = tmp_path / "ds.db"
    with LocalAgent(tmp_path / "c1", ["--name", "ort"]) as ort_agent, \
            LocalAgent(tmp_path / "c2", ["--backend", "openvino", "--ov-device", "CPU", "--name", "ov"]) as ov_agent:
        code = main(["latbench", "build", "--space", "nb201", "--devices", "cpu-ort,cpu-ov", "--sample", "3",
                     "--seed", "5", "--protocol", "fixed", "--param", "count=20", "--db", str(db), "--insecure",
                     "--quiet",
                     "--no-golden", "--backend", "cpu-ov=openvino", "--agent", f"cpu-ort={ort_agent.address}",
                     "--agent", f"cpu-ov={ov_agent.address}"])
    assert code == 0
    with Store(db) as store:
        rows = list(store.measurements())
    assert len(rows) == 6 and len({r["arch_id"] for r in rows}) == 3
    for r in rows:
        env = json.loads(r["environment_json"])
        expected = {"cpu-ort": ("onnxruntime", "ort"), "cpu-ov": ("openvino", "ov")}[r["device_key"]]
        assert (r["backend"], r["agent_name"]) == expected and r["latency_ms"] > 0 and r["count"] == 20
        assert env["runtime"] == expected[0]
        if r["backend"] == "openvino":
            assert env["runtime_settings"]["device"] == "CPU"
        else:
            assert env["runtime_settings"] == {}


@pytest.mark.parametrize(("flags", "message"), [
    (["--backend", "openvino", "--ov-device", "NPU"], "--ov-device NPU: OpenVINO on this host has CPU"),
    (["--backend", "openvino", "--ov-streams", "0"], "--ov-streams must be a whole number >= 1, got '0'"),
    (["--ov-device", "CPU"], "--ov-* flags configure the openvino backend; add --backend openvino"),
])
def test_the_agent_refuses_to_start_with_a_device_the_host_lacks(tmp_path: Path, flags: list[str],
                                                                  message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "hwnas.device_agent", "serve", "--port", "0", "--insecure",
                           "--cache-dir", str(tmp_path / "c"), *flags], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and message in done.stderr, done.stderr
