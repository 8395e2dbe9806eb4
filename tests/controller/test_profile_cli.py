"""`hwnas profile` and `hwnas demo` against real agents."""

import json
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


def test_demo_profiles_through_a_real_agent_process() -> None:
    done = subprocess.run([sys.executable, "-m", "controller.cli", "demo", "--protocol", "fixed"],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "started a local agent on 127.0.0.1:" in done.stdout
    rows = [line for line in done.stdout.splitlines() if line.startswith("cnn-w") and "fixed" in line]
    assert len(rows) == 3, done.stdout
    assert "stopped the agent" in done.stdout
