"""The replay backend: a real agent answers recorded latencies for models the controller exported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import onnx
import pytest

from hwnas.controller.fleet.client import AgentClient
from hwnas.controller.graph.onnx_export import to_onnx_bytes
from hwnas.controller.spaces import get_space
from hwnas.device_agent.errors import InvalidInput
from hwnas.device_agent.onnx_metadata import metadata_props

from ..conftest import start_agent
from .test_bad_input import expect

SPACE = get_space("nb201")
ARCHS = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
         "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|",
         "|nor_conv_1x1~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|"]


def exported(arch: str) -> bytes:
    x = SPACE.from_string(arch)
    return to_onnx_bytes(SPACE.to_graph(x), metadata={"hwnas.space": "nb201", "hwnas.arch": arch})


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "table.csv"
    path.write_text("arch_str,lat_ms_dev\n" + f"{ARCHS[0]},12.5\n{ARCHS[1]},3.25\n{ARCHS[2]},\n")
    return path


@pytest.fixture
def replay_client(tmp_path: Path, table: Path):
    server = start_agent(tmp_path / "cache", backends=["replay", "onnxruntime"],
                         backend_options={"replay": {"table": str(table), "column": "lat_ms_dev"}})
    with AgentClient(server.address, timeout_s=60) as client:
        client.wait_ready()
        yield client
    server.stop()


def test_metadata_reader_matches_onnx() -> None:
    data = exported(ARCHS[0])
    assert metadata_props(data) == {p.key: p.value for p in onnx.load_from_string(data).metadata_props}
    with pytest.raises(InvalidInput, match="not an ONNX model"):
        metadata_props(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff")


def test_replay_answers_the_recorded_value_and_says_so(replay_client: AgentClient) -> None:
    for arch, expected in ((ARCHS[0], 12.5), (ARCHS[1], 3.25)):
        sha, _ = replay_client.ensure_model(exported(arch))
        result = replay_client.profile(sha, backend="replay").result
        assert result["latency_ms"] == expected
        assert result["protocol"] == "replay"
        assert result["stats"]["count"] == 0  # nothing was timed
        assert "lat_ms_dev" in result["environment"]["runtime_version"]
        assert any("replayed from table.csv" in w for w in result["warnings"])
        assert not result["power"]["available"]


def test_replay_refuses_what_it_cannot_answer(replay_client: AgentClient, tiny_model: bytes) -> None:
    sha, _ = replay_client.ensure_model(tiny_model)  # no hwnas.arch metadata
    expect(grpc.StatusCode.INVALID_ARGUMENT, "carries no 'hwnas.arch' metadata", replay_client.profile, sha,
           backend="replay")
    other = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    sha, _ = replay_client.ensure_model(exported(other))
    expect(grpc.StatusCode.INVALID_ARGUMENT, "is not in the replayed table", replay_client.profile, sha,
           backend="replay")
    sha, _ = replay_client.ensure_model(exported(ARCHS[2]))  # the row has no value
    expect(grpc.StatusCode.INVALID_ARGUMENT, "has no lat_ms_dev value", replay_client.profile, sha, backend="replay")
    sha, _ = replay_client.ensure_model(exported(ARCHS[1]))  # and it keeps serving
    assert replay_client.profile(sha, backend="replay").result["latency_ms"] == 3.25


@pytest.mark.parametrize(("args", "message"), [
    (["--backend", "replay", "--column", "lat_ms_dev"], "needs a table and a column"),
    (["--backend", "replay", "--table", "TABLE", "--column", "nope"], "--column 'nope' is not in"),
    (["--backend", "replay", "--table", "/no/such.csv", "--column", "x"], "--table /no/such.csv: cannot read it"),
    (["--table", "TABLE", "--column", "lat_ms_dev"], "add --backend replay"),
])
def test_agent_cli_names_the_bad_replay_flag(tmp_path: Path, table: Path, args: list[str], message: str) -> None:
    args = [str(table) if a == "TABLE" else a for a in args]
    done = subprocess.run([sys.executable, "-m", "hwnas.device_agent", "serve", "--port", "0", "--insecure",
                           "--cache-dir", str(tmp_path / "c"), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
