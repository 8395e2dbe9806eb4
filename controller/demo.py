"""``make demo``: a real agent on 127.0.0.1 profiles small CNNs built from the CG IR."""

from __future__ import annotations

import tempfile
from pathlib import Path

from controller.client import AgentClient
from controller.graph import ComputationGraph, GraphBuilder
from controller.graph.onnx_export import to_onnx_bytes
from controller.local_agent import LocalAgent
from controller.report import profile_table


def small_cnn(width: int, blocks: int = 2, resolution: int = 32, classes: int = 10) -> ComputationGraph:
    """A ResNet-style CNN: conv stem, ``blocks`` residual blocks, pool, classifier."""
    b = GraphBuilder((1, 3, resolution, resolution))
    x = b.conv_bn_act(b.input, width, 3)
    for _ in range(blocks):
        y = b.conv_bn_act(x, width, 3)
        y = b.conv_bn_act(y, width, 3, act=None)
        x = b.op("relu", b.op("add", x, y))
    x = b.op("flatten", b.op("global_avgpool", x))
    b.linear(x, classes)
    return b.build()


def run_demo(protocol: str = "latbench") -> str:
    with tempfile.TemporaryDirectory(prefix="hwnas-demo-") as tmp, LocalAgent(Path(tmp) / "cache") as agent:
        print(f"started a local agent on {agent.address}")
        rows = []
        with AgentClient(agent.address) as client:
            client.wait_ready()
            info = client.device_info()
            print(f"device: {info.cpu_model} ({info.cpu_cores_logical} logical cores), "
                  f"backends: {', '.join(info.backends)}")
            for width in (16, 32, 64):
                graph = small_cnn(width)
                sha, uploaded = client.ensure_model(to_onnx_bytes(graph))
                label = f"cnn-w{width} ({graph.macs() / 1e6:.1f} MMACs)"
                print(f"{label}: arch_id {graph.arch_id[:12]}, model {sha[:12]} {'uploaded' if uploaded else 'cached'}")
                rows.append((label, client.profile(sha, protocol=protocol)))
        table = profile_table(rows)
    print(table)
    print("stopped the agent")
    return table
