"""The distribution as a user gets it: a wheel and an sdist built from this checkout, the wheel installed (not
editable) in a fresh virtual environment, and the Python guide's examples run there against real agents."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "python.md"


def guide_code() -> str:
    """The guide's Python blocks, in order: one script."""
    return "\n".join(re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL))


def source_copy(into: Path) -> Path:
    """The checkout's files that git knows or would add (a build writes beside them: not in the checkout)."""
    listed = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, into / name)
    return into


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """``python -m build``: the sdist, then the wheel built from it (so the sdist must hold everything)."""
    out = tmp_path_factory.mktemp("dist")
    source = source_copy(tmp_path_factory.mktemp("source"))
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def installed(built: Path, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed from the file, without its dependencies: those
    come from this environment's site-packages, listed after the venv's own (no index needed)."""
    env_dir = tmp_path_factory.mktemp("venv")
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    [wheel] = built.glob("hwnas-*.whl")
    done = subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return env_dir


def run_in(env_dir: Path, *args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_the_wheel_and_sdist_pass_twine_check(built: Path) -> None:
    assert sorted(p.suffix for p in built.iterdir()) == [".gz", ".whl"]
    done = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, built.iterdir())],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_installed_distribution_claims_only_hwnas(installed: Path, tmp_path: Path) -> None:
    [record] = installed.glob("lib/python*/site-packages/hwnas-*.dist-info/RECORD")
    top = {line.split(",")[0].split("/")[0] for line in record.read_text().splitlines()}
    assert {t for t in top if not t.endswith(".dist-info") and t != ".."} == {"hwnas"}
    installed_files = {line.split(",")[0] for line in record.read_text().splitlines()}
    for packaged in ("hwnas/py.typed", "hwnas/controller/data/nb201/nb201_latency_accuracy.csv.gz",
                     "hwnas/protos/hwnas/v1/agent.proto", "hwnas/controller/dashboard/templates/base.html"):
        assert packaged in installed_files, packaged
    where = run_in(installed, str(installed / "bin" / "python"), "-c",
                   "import hwnas, hwnas.controller.cli.main; print(hwnas.__file__); print(hwnas.Lab)", cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert where.stdout.startswith(str(installed)), where.stdout  # the wheel's copy, not this checkout's


def test_the_console_scripts_run(installed: Path, tmp_path: Path) -> None:
    version = run_in(installed, "hwnas", "--version", cwd=tmp_path)
    assert version.returncode == 0 and re.search(r"\d+\.\d+\.\d+", version.stdout), version.stdout + version.stderr
    info = run_in(installed, "hwnas-agent", "info", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert "onnxruntime" in json.loads(info.stdout)["backends"]


@pytest.mark.timeout(900)
def test_the_python_guide_runs_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    """Every example of docs/python.md, in order, against real agents on 127.0.0.1."""
    (tmp_path / "guide.py").write_text(guide_code())
    done = run_in(installed, str(installed / "bin" / "python"), "guide.py", cwd=tmp_path, timeout=900)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "hypervolume" in done.stdout and " measured, 0 failed" in done.stdout, done.stdout[-4000:]


def test_the_agent_extra_of_the_wheel_pulls_no_torch(built: Path, installed: Path, tmp_path: Path) -> None:
    """What ``pip install 'hwnas[agent]'`` would install, resolved from the package index for the built wheel."""
    [wheel] = built.glob("hwnas-*.whl")
    report = tmp_path / "report.json"
    done = run_in(installed, str(installed / "bin" / "python"), "-m", "pip", "install", "--dry-run",
                  "--ignore-installed", "--quiet", "--report", str(report), f"hwnas[agent] @ {wheel.as_uri()}",
                  cwd=tmp_path, timeout=600)
    if done.returncode != 0 and re.search(r"NewConnectionError|Max retries exceeded|name resolution", done.stderr):
        pytest.skip(f"the package index cannot be reached: {done.stderr.strip()[-300:]}")
    assert done.returncode == 0, done.stderr[-3000:]
    names = {item["metadata"]["name"].lower().replace("_", "-") for item in json.loads(report.read_text())["install"]}
    assert {"hwnas", "grpcio", "onnxruntime", "numpy", "psutil"} <= names, names
    assert not names & {"torch", "torch-geometric", "pymoo", "ortools", "onnx", "pandas", "scikit-learn"}, names
