"""One campaign over agents of several runtimes: each device key gets the model format its backend runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwnas.controller.cli.main import main
from hwnas.controller.fleet.campaign import CampaignPlan, plans_by_runtime
from hwnas.controller.fleet.local_agent import LocalAgent
from hwnas.controller.store import Store

pytest.importorskip("litert_torch", reason="the tflite extra (litert-torch) is not installed")

KEYS = {"vm-ort": ("onnxruntime", "onnx"), "vm-litert": ("litert", "tflite"), "vm-torch": ("torch", "onnx")}
RUNTIME = {"onnxruntime": "onnxruntime", "litert": "litert", "torch": "pytorch", "simulator": "simulator:zigzag"}


def test_the_same_sample_is_profiled_on_onnxruntime_litert_pytorch_and_simulator_agents(tmp_path: Path) -> None:
    """Issue #8's "done when": one campaign, four runtimes, each record naming backend, protocol and power."""
    pytest.importorskip("zigzag", reason="the agent-sim extra (zigzag-dse) is not installed")
    keys = {**KEYS, "vm-sim": ("simulator", "onnx")}
    db = tmp_path / "ds.db"
    with LocalAgent(tmp_path / "c1", ["--backend", "onnxruntime", "--backend", "litert", "--name", "cpu"]) as cpu, \
            LocalAgent(tmp_path / "c2", ["--backend", "torch", "--name", "pt"]) as pt, \
            LocalAgent(tmp_path / "c3", ["--backend", "simulator", "--sim-effort", "2", "--name", "sim"]) as sim:
        agents = [f"vm-ort={cpu.address}", f"vm-litert={cpu.address}", f"vm-torch={pt.address}",
                  f"vm-sim={sim.address}"]
        code = main(["latbench", "build", "--space", "nb201", "--devices", ",".join(keys), "--sample", "1",
                     "--seed", "4", "--protocol", "fixed", "--param", "count=20", "--db", str(db), "--insecure",
                     "--quiet", "--no-golden", "--backend", "vm-litert=litert", "--backend", "vm-torch=torch",
                     "--backend", "vm-sim=simulator", *[flag for a in agents for flag in ("--agent", a)]])
    assert code == 0
    with Store(db) as store:
        rows = list(store.measurements())
    assert len(rows) == 4
    assert len({r["arch_id"] for r in rows}) == 1  # the same network on every runtime
    for r in rows:
        backend, fmt = keys[r["device_key"]]
        assert (r["backend"], r["model_format"]) == (backend, fmt)
        assert json.loads(r["environment_json"])["runtime"] == RUNTIME[backend] and r["latency_ms"] > 0
        if backend == "simulator":  # nothing ran: the simulator's protocol, its energy model as the power source
            assert r["protocol"].startswith("simulator:zigzag@") and r["count"] == 0
            assert r["power_available"] and r["power_source"] == "simulator:zigzag tpu_like"
        else:
            assert r["protocol"] == "fixed" and r["count"] == 20
            assert r["power_source"] or "rapl" in r["power_unavailable_reason"]  # where power came from, or why not


def test_runtime_flags_name_what_is_wrong() -> None:
    base = CampaignPlan(campaign="c", device_keys=["a", "b"])
    plans = plans_by_runtime(base, ["b=litert"], ["b=tflite-int8"])
    assert [(p.device_keys, p.backend, p.model_format) for p in plans] == [
        (["a"], "onnxruntime", "onnx"), (["b"], "litert", "tflite-int8")]
    assert [p.backend for p in plans_by_runtime(base, ["torch"])] == ["torch"]
    with pytest.raises(ValueError, match="names device key 'c', which is not one of the campaign's device keys"):
        plans_by_runtime(base, ["c=litert"])
    with pytest.raises(ValueError, match="backend 'onnxruntime' runs \\['onnx'\\], not 'tflite'"):
        plans_by_runtime(base, [], ["tflite"])
    with pytest.raises(ValueError, match="backend must look like NAME or KEY=NAME"):
        plans_by_runtime(base, ["a="])


def test_the_cli_refuses_a_format_the_backend_cannot_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["latbench", "build", "--space", "nb201", "--devices", "k", "--sample", "1", "--db",
                 str(tmp_path / "d.db"), "--agent", "k=127.0.0.1:1", "--model-format", "tflite", "--insecure"])
    assert code == 2
    assert "backend 'onnxruntime' runs ['onnx'], not 'tflite'" in capsys.readouterr().err
    assert not (tmp_path / "d.db").exists()  # refused before anything was written


def test_a_batch_32_campaign_sends_each_runtime_a_model_taking_32_samples(tmp_path: Path) -> None:
    db = tmp_path / "ds.db"
    with LocalAgent(tmp_path / "c", ["--backend", "onnxruntime", "--backend", "litert", "--backend", "torch"]) as a:
        code = main(["latbench", "build", "--space", "nb201", "--devices", ",".join(KEYS), "--sample", "1",
                     "--seed", "5", "--protocol", "fixed", "--param", "count=5", "--batch-size", "32", "--db",
                     str(db), "--insecure", "--quiet",
                     "--no-golden", "--backend", "vm-litert=litert", "--backend", "vm-torch=torch",
                     *[flag for key in KEYS for flag in ("--agent", f"{key}={a.address}")]])
    assert code == 0
    with Store(db) as store:
        rows = list(store.measurements())
    assert len(rows) == 3
    assert all(r["batch_size"] == 32 and json.loads(r["input_shape_json"]) == [32, 3, 32, 32] for r in rows)


def test_a_plan_sends_what_its_backend_runs_unless_told() -> None:
    assert CampaignPlan("c", ["k"], backend="litert").model_format == "tflite"
    assert CampaignPlan("c", ["k"], backend="litert", model_format="tflite-int8").model_format == "tflite-int8"
    assert CampaignPlan("c", ["k"]).model_format == "onnx"
    with pytest.raises(ValueError, match="backend 'torch' runs \\['onnx'\\], not 'tflite'"):
        CampaignPlan("c", ["k"], backend="torch", model_format="tflite")
