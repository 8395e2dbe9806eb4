"""Shared fixtures: real agents on 127.0.0.1 and small real ONNX models."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from hwnas.controller.cli.demo import small_cnn
from hwnas.controller.fleet.client import AgentClient
from hwnas.controller.graph.onnx_export import to_onnx_bytes
from hwnas.device_agent.server import AgentConfig, AgentServer
from tests.built_once import built_once


@pytest.fixture(scope="session")
def tiny_model() -> bytes:
    """A ~0.1 ms CNN: quick to time."""
    return to_onnx_bytes(small_cnn(8, blocks=1))


@pytest.fixture(scope="session")
def medium_model() -> bytes:
    """A ~1-2 ms CNN: long enough that concurrent calls overlap."""
    return to_onnx_bytes(small_cnn(64, blocks=2))


def modules_loaded_by(code: str, names: Iterable[str]) -> list[str]:
    """Which of the top-level modules ``names`` a fresh interpreter holds after running ``code``: the light
    import paths (agent, predictors, export, ridge) are promises about what is never imported."""
    script = f"{code}\nimport sys\nprint(' '.join(sorted(n for n in {sorted(names)!r} if n in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def start_agent(cache_dir: Path, **config) -> AgentServer:
    server = AgentServer(AgentConfig(name="test-agent", cache_dir=cache_dir, **config), "127.0.0.1", 0)
    server.start()
    return server


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[AgentServer]:
    """An in-process agent serving real gRPC on 127.0.0.1."""
    server = start_agent(tmp_path / "cache")
    yield server
    server.stop()


@pytest.fixture
def client(agent: AgentServer) -> Iterator[AgentClient]:
    with AgentClient(agent.address, timeout_s=60) as c:
        c.wait_ready()
        yield c


SMALL_GENNAPE = {"cl_epochs": 1, "width": 16, "hidden": 32, "head_layers": 2, "epochs": 10, "pairs_per_epoch": 1024,
                 "kgnn_hidden": 16, "kgnn_layers": 2, "kgnn_epochs": 5, "references": 48, "finetune_epochs": 10,
                 "min_accuracy": 0.0}


@pytest.fixture(scope="session")
def small_gennape(tmp_path_factory) -> Path:
    """A GENNAPE pretrained for seconds on 120 NB-201 networks, saved: small, but every part of it is real."""
    from hwnas.controller.learning.families import load_family
    from hwnas.predictors import get_predictor

    def build(folder: Path) -> None:
        get_predictor("gennape", **SMALL_GENNAPE).fit(load_family("nb201", 120).samples).save(folder / "nb201")

    return built_once(tmp_path_factory, "gennape", build) / "nb201"
