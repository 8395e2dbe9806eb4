"""The agent must run on a Raspberry Pi: importing and serving never pulls in the ML stack."""

import subprocess
import sys
import textwrap
from pathlib import Path

HEAVY = ("torch", "torch_geometric", "pymoo", "ortools", "hwnas.controller", "hwnas.predictors", "onnx", "zeus",
         "pandas", "sklearn")
# Imported only inside the torch backend's load(), by an agent that enabled --backend torch.
TORCH_ONLY = "hwnas.device_agent.backends.onnx_torch"

SCRIPT = textwrap.dedent(
    """
    import hashlib, importlib, pkgutil, sys, tempfile
    import grpc
    import hwnas.device_agent
    for m in pkgutil.walk_packages(hwnas.device_agent.__path__, "hwnas.device_agent."):
        if m.name not in ("hwnas.device_agent.__main__", %r):
            importlib.import_module(m.name)
    from hwnas.device_agent.server import AgentConfig, AgentServer
    from hwnas.protos.hwnas.v1 import agent_pb2, agent_pb2_grpc
    model = open(sys.argv[1], "rb").read()
    server = AgentServer(AgentConfig(name="light", cache_dir=tempfile.mkdtemp()), "127.0.0.1", 0)
    server.start()
    stub = agent_pb2_grpc.DeviceAgentStub(grpc.insecure_channel(server.address))
    sha = hashlib.sha256(model).hexdigest()
    stub.UploadModel(iter([agent_pb2.UploadModelChunk(header=agent_pb2.UploadHeader(sha256=sha, size_bytes=len(model))),
                           agent_pb2.UploadModelChunk(data=model)]))
    opts = agent_pb2.ProfileOptions(protocol="fixed", protocol_params={"count": 5})
    result = stub.Profile(agent_pb2.ProfileRequest(model_sha256=sha, backend="onnxruntime", options=opts))
    assert result.stats.count == 5, result
    server.stop()
    print(" ".join(sorted(name for name in %r if name in sys.modules)))
    """
)


def test_agent_imports_and_serves_without_heavy_modules(tmp_path: Path, tiny_model: bytes) -> None:
    model_path = tmp_path / "m.onnx"
    model_path.write_bytes(tiny_model)
    done = subprocess.run([sys.executable, "-c", SCRIPT % (TORCH_ONLY, HEAVY), str(model_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"device_agent pulled in: {done.stdout.strip()}"


def test_module_entry_point_prints_help() -> None:
    done = subprocess.run([sys.executable, "-m", "hwnas.device_agent", "serve", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for flag in ("--host", "--port", "--backend", "--name", "--cache-dir"):
        assert flag in done.stdout
