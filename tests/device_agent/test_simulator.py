"""The simulator backend: ZigZag cycles and energy for an accelerator, behind a real agent."""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc
import onnx
import pytest

from hwnas.controller.fleet.client import AgentClient
from hwnas.controller.graph import GraphBuilder
from hwnas.controller.graph.onnx_export import to_onnx_bytes
from hwnas.controller.spaces import get_space
from hwnas.device_agent.backends.simulator_backend import SimulatorBackend

from ..conftest import start_agent
from .test_bad_input import expect

pytest.importorskip("zigzag", reason="the agent-sim extra (zigzag-dse) is not installed")

NB201 = get_space("nb201")
ARCHS = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|",
         "|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_1x1~2|"]


def exported(arch: str) -> bytes:
    return to_onnx_bytes(NB201.to_graph(NB201.from_string(arch)))


def test_the_sum_of_simulated_layers_is_zigzags_figure_for_the_whole_network(tmp_path: Path) -> None:
    from zigzag.api import get_hardware_performance_zigzag

    b = GraphBuilder((1, 3, 16, 16))
    y = b.conv_bn_act(b.input, 16, 3)
    y = b.op("add", y, b.conv_bn_act(b.conv_bn_act(y, 16, 3), 16, 3))  # one layer shape twice: simulated once
    y = b.conv_bn_act(y, 64, 1, stride=2)  # (zigzag.api itself fails on a Gemm that needs no temporal loop)
    graph = b.build(b.linear(b.op("flatten", b.op("global_avgpool", y)), 10))
    backend = SimulatorBackend(effort="2")
    path = tmp_path / "m.onnx"
    path.write_bytes(to_onnx_bytes(graph))
    answer = backend.load(path, 0).answer
    logging.getLogger("zigzag").setLevel(logging.ERROR)
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    with tempfile.TemporaryDirectory() as out:
        energy_pj, cycles, _ = get_hardware_performance_zigzag(
            model, str(backend.accelerator), str(backend.mapping), opt="latency", dump_folder=out, lpf_limit=2,
            nb_spatial_mappings_generated=2, loma_show_progress_bar=False)
    assert answer.details["cycles"] == pytest.approx(cycles) and answer.details["energy_pj"] == pytest.approx(energy_pj)
    assert answer.latency_ms == pytest.approx(cycles / 1e6)  # 1000 MHz by default
    assert answer.details["layers"] == 5 and len(backend._layers) == 4


def test_a_simulator_agent_answers_cycles_at_its_clock_and_energy_and_says_it_simulated(tmp_path: Path) -> None:
    server = start_agent(tmp_path / "cache", backends=["simulator"],
                         backend_options={"simulator": {"accelerator": "tpu_like", "clock_mhz": "500",
                                                        "effort": "2"}})
    try:
        with AgentClient(server.address, timeout_s=300) as client:
            results = []
            for arch in ARCHS:
                sha, _ = client.ensure_model(exported(arch))
                results.append(client.profile(sha, backend="simulator").result)
            bad, _ = client.ensure_model(b"not onnx at all")
            expect(grpc.StatusCode.INVALID_ARGUMENT, "whose shapes infer", client.profile, bad, backend="simulator")
    finally:
        server.stop()
    for r in results:
        assert r["protocol"].startswith("simulator:zigzag@") and r["stats"]["count"] == 0
        assert r["latency_ms"] == pytest.approx(r["protocol_details"]["cycles"] / 500e3)
        assert r["protocol_details"]["clock_mhz"] == 500 and r["protocol_details"]["layers"] > 0
        assert r["power"]["available"] and r["power"]["source"] == "simulator:zigzag tpu_like"
        assert r["power"]["energy_per_inference_mj"] == pytest.approx(r["protocol_details"]["energy_pj"] * 1e-9)
        assert "tpu_like" in r["environment"]["runtime_version"] and "500 MHz" in r["environment"]["runtime_version"]
        assert any("simulated on tpu_like by ZigZag" in w for w in r["warnings"])
    assert results[0]["latency_ms"] != results[1]["latency_ms"]


@pytest.mark.parametrize(("flags", "message"), [
    (["--backend", "simulator", "--sim-accelerator", "warp_drive"], "is neither a YAML file nor one ZigZag ships"),
    (["--backend", "simulator", "--sim-clock-mhz", "0"], "--sim-clock-mhz must be > 0"),
    (["--sim-effort", "2"], "add --backend simulator"),
])
def test_bad_simulator_flags_stop_the_agent_with_what_is_wrong(tmp_path: Path, flags: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "hwnas.device_agent", "serve", "--port", "0", "--insecure",
                           "--cache-dir", str(tmp_path / "c"), *flags], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and message in done.stderr, done.stderr
