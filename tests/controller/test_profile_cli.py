"""`hwnas profile` and `hwnas demo` against real agents."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from controller.cli import main


@pytest.fixture
def model_file(tmp_path: Path, tiny_model: bytes) -> Path:
    path = tmp_path / "tiny.onnx"
    path.write_bytes(tiny_model)
    return path


def test_profile_prints_a_table(agent, model_file: Path, capsys) -> None:
    assert main(["profile", str(model_file), "--agent", agent.address, "--insecure", "--param", "runs=5"]) == 0
    out = capsys.readouterr().out
    assert "tiny.onnx" in out and "latbench" in out and "latency_ms" in out
    assert "power for tiny.onnx: unavailable" in out


def test_profile_json_has_the_full_record_and_skips_a_second_upload(agent, model_file: Path, capsys) -> None:
    args = ["profile", str(model_file), "--agent", agent.address, "--insecure", "--protocol", "fixed",
            "--param", "count=7", "--json", "--samples"]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["uploaded"] is True and first["protocol"] == "fixed" and first["stats"]["count"] == 7
    assert len(first["samples_ms"]) == 7 and first["round_trip_ms"] > 0
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["uploaded"] is False


def test_profile_errors_name_what_went_wrong(agent, model_file: Path, tmp_path: Path, capsys) -> None:
    assert main(["profile", str(tmp_path / "missing.onnx"), "--agent", agent.address, "--insecure"]) == 2
    assert "cannot read MODEL" in capsys.readouterr().err
    assert main(["profile", str(model_file), "--agent", agent.address, "--insecure", "--protocol", "nope"]) == 1
    assert "INVALID_ARGUMENT: unknown protocol 'nope'" in capsys.readouterr().err
    assert main(["profile", str(model_file), "--agent", "127.0.0.1:1", "--connect-timeout", "0.5", "--insecure"]) == 1
    assert "UNAVAILABLE: no agent answered" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["profile", str(model_file), "--agent", agent.address, "--insecure", "--param", "runs"])
    assert "--param" in capsys.readouterr().err


def test_demo_runs_the_main_job_end_to_end(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "controller.cli", "demo", "--out", str(tmp_path / "demo"),
                           "--sample", "12", "--evals", "30"], capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "1. agents: ONNX Runtime on 127.0.0.1:" in out and "replayed Pixel 3" in out
    assert len([line for line in out.splitlines() if line.startswith("cnn-w") and "fixed" in line]) == 3, out
    assert re.search(r"local-cpu-ort: \d+ done; pixel3-replay: \d+ done$", out, re.MULTILINE), out
    assert len(re.findall(r"latency predictor \(svr\) .* on \d+ held-out measurements$", out, re.MULTILINE)) == 2, out
    for name in ("pareto.png", "hypervolume.png"):
        assert (tmp_path / "demo" / "search" / name).stat().st_size > 1000
    assert len((tmp_path / "demo" / "search" / "measured.csv").read_text().splitlines()) == 31
