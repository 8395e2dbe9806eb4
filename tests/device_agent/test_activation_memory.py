"""A batch whose activations cannot fit is refused before the runtime allocates them (it grew an agent to
22 GB and the kernel killed it); the estimate is the peak of tensors live at once, from declared shapes."""

from pathlib import Path

import grpc
import pytest
from onnx import TensorProto, helper

from hwnas.controller.fleet.client import AgentCallError, AgentClient
from hwnas.controller.graph.onnx_export import to_onnx_bytes
from hwnas.controller.spaces import get_space
from hwnas.device_agent.activation_memory import estimate
from hwnas.device_agent.host import memory_total_bytes

UNIT = 4 * 1000  # one float32 row of 1000


def branching_model(path: Path, declare: bool = True) -> Path:
    """x -> Relu -> a, x -> Relu -> b, a + b -> y, with a symbolic batch: at most x, a and b (or a, b, y) live."""
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Relu", ["x"], ["b"]),
             helper.make_node("Add", ["a", "b"], ["y"])]
    row = ["batch", 1000]
    inner = [helper.make_tensor_value_info(n, TensorProto.FLOAT, row) for n in "ab"] if declare else []
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, row)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, row)], value_info=inner)
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    return path


def test_the_estimate_is_the_peak_of_live_tensors_at_the_requested_batch(tmp_path: Path) -> None:
    model = branching_model(tmp_path / "m.onnx")
    assert estimate(model, {"x": (1, 1000)}).peak_bytes == 3 * UNIT
    assert estimate(model, {"x": (64, 1000)}).peak_bytes == 3 * 64 * UNIT
    # a model that declares too few of its tensors says too little to judge: no estimate, no refusal
    assert estimate(branching_model(tmp_path / "bare.onnx", declare=False), {"x": (64, 1000)}) is None
    (tmp_path / "junk.onnx").write_bytes(b"\xff" * 64)
    assert estimate(tmp_path / "junk.onnx", {"x": (1, 1000)}) is None


def test_controller_models_declare_every_tensor_so_their_batch_can_be_judged(tmp_path: Path) -> None:
    space = get_space("nb201")
    graph = space.to_graph(space.from_string(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"))
    one, many = (tmp_path / "b1.onnx", tmp_path / "b512.onnx")
    one.write_bytes(to_onnx_bytes(graph))
    many.write_bytes(to_onnx_bytes(graph.with_batch(512)))
    small, big = estimate(one, {}), estimate(many, {})
    assert small.known_outputs == small.node_outputs > 0
    assert big.peak_bytes == 512 * small.peak_bytes
    assert small.peak_bytes >= 16 * 32 * 32 * 4 * 2  # at least two 16x32x32 feature maps are live at once


def test_a_batch_too_large_for_the_host_is_invalid_argument_and_the_agent_keeps_serving(
        client: AgentClient, tiny_model: bytes, tmp_path: Path) -> None:
    """--batch-size 100000 grew the agent to 22 GB until the kernel killed it; now it is refused at once."""
    space = get_space("nb201")
    graph = space.to_graph(space.from_string(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"))
    (tmp_path / "one.onnx").write_bytes(to_onnx_bytes(graph))
    per_sample = estimate(tmp_path / "one.onnx", {}).peak_bytes
    batch = int(memory_total_bytes() / per_sample) + 1  # needs more than all of this host's memory
    sha, _ = client.ensure_model(to_onnx_bytes(graph.with_batch(batch)))
    with pytest.raises(AgentCallError) as info:
        client.profile(sha, protocol="fixed", protocol_params={"count": 3}, batch_size=batch)
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT, info.value
    assert "activations need at least" in info.value.details
    assert "use a batch size of at most about" in info.value.details
    sha, _ = client.ensure_model(tiny_model)
    assert client.profile(sha, protocol="fixed", protocol_params={"count": 3}).stats["count"] == 3



def test_the_memory_probes_peak_is_its_own_not_the_agents_that_started_it() -> None:
    """A Linux child inherits its parent's peak RSS in ru_maxrss (the hiwater of the address space it was
    forked with), so a probe started by an agent holding 600 MiB read at least 600 MiB as its 'peak' and
    ignored every real peak below that. The probe reads its own address space's peak instead."""
    import subprocess
    import sys

    import numpy as np

    held = np.ones(600 * 2**20 // 8)  # the agent's cached sessions, say
    done = subprocess.run([sys.executable, "-c", "from hwnas.device_agent.memory_probe import peak_rss_bytes; "
                           "print(peak_rss_bytes())"], capture_output=True, text=True, timeout=120, check=True)
    assert held.sum() > 0
    assert int(done.stdout) < 300 * 2**20, f"the child's peak reads {int(done.stdout) / 2**20:.0f} MiB"
