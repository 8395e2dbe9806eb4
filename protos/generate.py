"""Regenerate the committed Python code for the wire contract.

Run ``python -m hwnas.protos.generate`` from the repository root after editing a
``.proto`` file. protoc names a generated module by its .proto file's path, so it reads them
as ``hwnas/protos/...`` (a staging folder links ``hwnas/protos`` to this folder): the code
imports ``hwnas.protos.hwnas.v1``, the name this folder installs under.
``tests/protos/test_generated_code.py`` regenerates into a temporary folder and fails when the
committed files differ, so a stale ``*_pb2.py`` never lands.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVICE_FILES = ("hwnas/v1/agent.proto", "hwnas/v1/controller.proto")  # gRPC services + messages
MESSAGE_FILES = ("onnx_format/onnx_ml.proto",)  # messages only: the ONNX model format
MESSAGE_SUFFIXES = ("_pb2.py", "_pb2.pyi")
SERVICE_SUFFIXES = (*MESSAGE_SUFFIXES, "_pb2_grpc.py")


def generate(out_dir: Path) -> list[Path]:
    """Run protoc (from grpcio-tools, a dev-only dependency) over every contract file into ``out_dir``.

    protoc runs in its own process: its compiler links a C++ protobuf that aborts the interpreter when
    another one (OR-Tools', loaded by AutoGO) is already there.
    """
    import importlib.util

    spec = importlib.util.find_spec("grpc_tools")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("grpcio-tools is not installed: pip install -e '.[dev]'")
    include = str(Path(next(iter(spec.submodule_search_locations))) / "_proto")
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as staging:
        stage = Path(staging)
        (stage / "hwnas").mkdir()
        (stage / "hwnas" / "protos").symlink_to(Path(__file__).resolve().parent, target_is_directory=True)
        made = stage / "out"
        made.mkdir()
        for files, services in ((SERVICE_FILES, True), (MESSAGE_FILES, False)):
            args = [
                sys.executable, "-m", "grpc_tools.protoc",
                f"-I{stage}",
                f"-I{include}",
                f"--python_out={made}",
                f"--pyi_out={made}",
                *([f"--grpc_python_out={made}"] if services else []),
                *(f"{stage}/hwnas/protos/{proto}" for proto in files),
            ]
            done = subprocess.run(args, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"protoc failed with exit code {done.returncode}: {done.stderr.strip()}")
            for proto in files:
                for suffix in (SERVICE_SUFFIXES if services else MESSAGE_SUFFIXES):
                    name = proto.replace(".proto", suffix)
                    target = out_dir / "protos" / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(made / "hwnas" / "protos" / name, target)
                    written.append(target)
    return written


def main() -> int:
    for path in generate(REPO_ROOT):
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
