"""Issue #34's campaign: three device keys, three ways of measuring, one dataset. A board over real SSH
(OpenVINO's benchmark_app), a phone through a FAKE adb (tests/device_agent/fake_adb.py; its tool is the real
litert-benchmark) and this host's ONNX Runtime; the export says which tool, version and command measured."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import pytest

from hwnas.controller.cli.main import main
from hwnas.controller.fleet.local_agent import LocalAgent
from hwnas.controller.store import Store

from ..device_agent.lab_devices import BENCHMARK_APP, FakePhone, SshServer

pytest.importorskip("litert_torch", reason="the tflite extra (litert-torch) is not installed")
pytest.importorskip("openvino", reason="the agent-openvino extra is not installed")
pytest.importorskip("paramiko", reason="the agent-ssh extra is not installed")


def test_a_campaign_over_ssh_adb_and_local_keys_builds_one_dataset_naming_each_tool(tmp_path: Path) -> None:
    board = SshServer(tmp_path / "sshd").start()
    (tmp_path / "board").mkdir()
    phone = FakePhone(tmp_path / "phone")
    db, out = tmp_path / "lab.db", tmp_path / "lab.csv"
    try:
        with LocalAgent(tmp_path / "c1", ["--backend", "benchmark-app", "--tool", str(BENCHMARK_APP),
                                          *board.agent_args(), "--remote-dir", str(tmp_path / "board"),
                                          "--name", "board"]) as ssh_agent, \
                LocalAgent(tmp_path / "c2", ["--backend", "benchmark-model", *phone.agent_args(),
                                             "--name", "phone"]) as adb_agent, \
                LocalAgent(tmp_path / "c3", ["--name", "host"]) as ort_agent:
            code = main(["latbench", "build", "--space", "nb201", "--devices", "board-ov,pixel-tfl,host-ort",
                         "--sample", "1", "--seed", "4", "--protocol", "fixed", "--param", "count=10", "--db",
                         str(db), "--insecure", "--quiet", "--no-golden", "--backend", "board-ov=benchmark-app",
                         "--backend", "pixel-tfl=benchmark-model", "--agent", f"board-ov={ssh_agent.address}",
                         "--agent", f"pixel-tfl={adb_agent.address}", "--agent", f"host-ort={ort_agent.address}"])
            assert code == 0
    finally:
        board.kill()
    assert main(["latbench", "export", "--db", str(db), "--format", "csv", "--out", str(out)]) == 0
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and len({r["arch_id"] for r in rows}) == 1  # the same network on each key
    by_key = {}
    for row in rows:
        by_key.setdefault(row["device_key"], []).append(row)
        assert float(row["latency_ms"]) > 0
    for row in by_key["board-ov"]:
        env = json.loads(row["environment_json"])
        assert (row["backend"], row["model_format"], env["tool"]) == ("benchmark-app", "onnx", "benchmark-app")
        assert env["transport"] == board.target and env["tool_version"].startswith("2")
        assert env["tool_command"].startswith(f"{BENCHMARK_APP} -m {tmp_path / 'board'}/hwnas-")
        assert float(row["load_ms"]) > 0 and row["protocol"] == "fixed/tool-mean"
    for row in by_key["pixel-tfl"]:
        env = json.loads(row["environment_json"])
        assert (row["backend"], row["model_format"], env["tool"]) == ("benchmark-model", "tflite", "benchmark-model")
        assert env["transport"] == "adb:FAKE0PHONE" and env["tool_version"].startswith("ai-edge-litert ")
        assert env["tool_command"].startswith("taskset 2 /data/local/tmp/litert-benchmark --model /data/local/tmp/")
        assert row["power_available"] == "True" and "USB power must be off" in row["power_source"]
    for row in by_key["host-ort"]:
        env = json.loads(row["environment_json"])
        assert row["backend"] == "onnxruntime" and row["protocol"] == "fixed" and env["tool"] == ""
    assert list((tmp_path / "board").iterdir()) == [] and phone.scratch_left() == []


def test_two_agents_on_one_phone_never_measure_at_once(tmp_path: Path) -> None:
    """An ADB serial is one host for the host gate: the CPU and the GPU-delegate keys of one phone take turns
    (read from the records' own start and end times, not from timing)."""
    phone = FakePhone(tmp_path / "phone")
    db = tmp_path / "lab.db"
    with LocalAgent(tmp_path / "c1", ["--backend", "benchmark-model", *phone.agent_args(), "--name", "cpu"]) as a, \
            LocalAgent(tmp_path / "c2", ["--backend", "benchmark-model", *phone.agent_args(), "--name", "cpu2"]) as b:
        code = main(["latbench", "build", "--space", "nb201", "--devices", "pixel-a,pixel-b", "--sample", "1",
                     "--seed", "4", "--protocol", "fixed", "--param", "count=30", "--db", str(db), "--insecure",
                     "--quiet", "--no-golden", "--backend", "benchmark-model", "--agent", f"pixel-a={a.address}",
                     "--agent", f"pixel-b={b.address}"])
    assert code == 0
    with Store(db) as store:
        windows = sorted((r["started_unix_ns"], r["finished_unix_ns"], r["device_key"])
                         for r in store.measurements())
    assert len(windows) == 2 and {key for _, _, key in windows} == {"pixel-a", "pixel-b"}
    for (_, end, _), (start, _, _) in itertools.pairwise(windows):
        assert end <= start  # each measurement ended before the next began
