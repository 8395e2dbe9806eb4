"""Layer and kernel latencies learnt from whole networks' per-op profiles (issue #37), and the layer-wise
predictor trained from them through a real agent."""

import json
from pathlib import Path

import numpy as np
import pytest

from hwnas.controller.cli.main import main
from hwnas.controller.graph.builder import GraphBuilder
from hwnas.controller.graph.onnx_export import node_of_name
from hwnas.controller.learning.layer_latency import layer_at
from hwnas.controller.learning.op_profile_layers import (
    KernelView,
    profile_kernels,
    profiled_layer_sums,
    profiled_layer_times,
)
from hwnas.controller.store import Store
from hwnas.predictors.kernel_model import KernelModel


def residual_graph():
    """conv3x3-bn-relu feeding a conv1x1-bn branch and a conv1x1 shortcut, added; pooled, flattened, linear."""
    b = GraphBuilder((1, 8, 8, 8))
    relu = b.op("relu", b.op("batchnorm", b.conv(b.input, 8, 3)))
    branch = b.op("batchnorm", b.conv(relu, 8, 1))
    shortcut = b.conv(relu, 8, 1)
    out = b.linear(b.op("flatten", b.op("global_avgpool", b.op("add", branch, shortcut))), 10)
    return b.build(out).canonical()


def roles(graph) -> dict[str, int]:
    """Canonical indices of residual_graph's nodes by role."""
    ops = [n.op for n in graph.nodes]
    consumers = graph.consumers()
    stem = next(i for i, n in enumerate(graph.nodes) if n.op == "conv" and n.attrs["kernel"] == (3, 3))
    relu = ops.index("relu")
    branch_conv = next(c for c in consumers[relu] if consumers[c] and ops[consumers[c][0]] == "batchnorm")
    shortcut = next(c for c in consumers[relu] if c != branch_conv)
    return {"stem": stem, "stem_bn": consumers[stem][0], "relu": relu, "branch_conv": branch_conv,
            "branch_bn": consumers[branch_conv][0], "shortcut": shortcut, "add": ops.index("add"),
            "pool": ops.index("global_avgpool"), "flatten": ops.index("flatten"), "linear": ops.index("linear")}


def ort_profile(r: dict[str, int], shortcut_ms: float = 0.2, branch_ms: float = 0.3) -> list[dict]:
    """A profile as onnxruntime names it: a conv+bn+relu after its relu, a conv+bn after its bn with the add
    fused into the conv that ran last, a reorder of its own, the flatten elided, the linear as the output."""
    return [{"name": f"n{r['relu']}_nchwc", "op_type": "Conv", "time_ms": 0.5},
            {"name": f"n{r['shortcut']}_nchwc", "op_type": "Conv", "time_ms": shortcut_ms},
            {"name": f"n{r['branch_bn']}_nchwc", "op_type": "Conv", "time_ms": branch_ms},
            {"name": "ReorderOutput", "op_type": "ReorderOutput", "time_ms": 0.01},
            {"name": f"n{r['pool']}", "op_type": "GlobalAveragePool", "time_ms": 0.02},
            {"name": "output", "op_type": "Gemm", "time_ms": 0.03}]


def test_runtime_names_map_to_canonical_nodes_and_outputs() -> None:
    assert node_of_name("n7") == 7 and node_of_name("n36_bn_nchwc") == 36
    assert node_of_name("ReorderOutput") is None and node_of_name("Multiply_3983") is None
    assert node_of_name("output", [12]) == 12 and node_of_name("output") is None
    assert node_of_name("output1", [4, 9]) == 9 and node_of_name("output", [4, 9]) is None


def test_a_profile_becomes_the_kernels_the_runtime_fused() -> None:
    graph = residual_graph()
    r = roles(graph)
    kernels, unclaimed = profile_kernels(graph, ort_profile(r))
    found = {k.members: k.time_ms for k in kernels}
    assert found == {
        tuple(sorted((r["stem"], r["stem_bn"], r["relu"]))): 0.5,  # the conv went down its chain to the relu
        (r["shortcut"],): 0.2,
        tuple(sorted((r["branch_conv"], r["branch_bn"], r["add"]))): 0.3,  # the add: into the producer run last
        tuple(sorted((r["pool"], r["flatten"]))): 0.02,  # the flatten, elided, into its producer
        (r["linear"],): 0.03,
    }
    assert unclaimed == pytest.approx(0.01)


def test_layer_times_book_each_kernel_to_its_heaviest_member_and_take_medians() -> None:
    graph = residual_graph()
    r = roles(graph)
    runs = [(graph, ort_profile(r, shortcut_ms=0.2, branch_ms=0.3)), (graph, ort_profile(r, 0.4, 0.5)),
            (graph, ort_profile(r, 0.6, 0.7))]
    times = profiled_layer_times(runs)
    # the shortcut and the branch's conv are the same layer (1x1, 8 -> 8 at 8x8): six occurrences
    assert times[layer_at(graph, r["shortcut"]).key] == pytest.approx(np.median([0.2, 0.3, 0.4, 0.5, 0.6, 0.7]))
    assert times[layer_at(graph, r["stem"]).key] == 0.5 and times[layer_at(graph, r["relu"]).key] == 0.0
    assert profiled_layer_sums([graph], times)[0] == pytest.approx(0.5 + 2 * 0.45 + 0.02 + 0.03)
    other = GraphBuilder((1, 8, 8, 8))
    unseen = other.build(other.conv(other.input, 16, 5))
    with pytest.raises(ValueError, match="no op profile holds layer conv.*op profiles, or learn from kernels"):
        profiled_layer_sums([unseen], times)


def test_the_kernel_view_learns_fusions_and_predicts_networks_no_profile_saw() -> None:
    graph = residual_graph()
    r = roles(graph)
    view = KernelView.learn([(graph, ort_profile(r))])
    assert {("conv", "batchnorm"), ("batchnorm", "relu"), ("global_avgpool", "flatten")} <= view.fuses
    assert tuple(sorted((r["stem"], r["stem_bn"], r["relu"]))) in view.kernels(graph)
    assert view.sums([graph])[0] == pytest.approx(0.5 + 0.2 + 0.3 + 0.02 + 0.03)  # seen kernels: their times
    wider = GraphBuilder((1, 8, 16, 16))
    bigger = wider.build(wider.op("relu", wider.op("batchnorm", wider.conv(wider.input, 8, 3))))
    assert view.sums([bigger])[0] > 0  # a configuration no profile saw is still predicted


def test_kernel_model_medians_seen_configurations_and_fits_non_negative_lines_for_others() -> None:
    features = np.array([[1.0, 1.0, 1.0], [2.0, 1.0, 1.0], [4.0, 2.0, 1.0], [4.0, 2.0, 1.0], [1.0, 9.0, 1.0]])
    model = KernelModel().fit(["conv", "conv", "conv", "conv", "pool"], features, np.array([1, 2, 4, 6, 9.0]))
    assert model.predict(["conv"], features[2:3])[0] == 5.0  # seen twice: the median
    assert model.own_types() == ["conv"]  # the pool has one configuration: no line of its own
    assert all(np.all(c >= 0) for c in model.coefficients.values())
    assert model.predict(["conv"], np.array([[8.0, 4.0, 1.0]]))[0] > model.predict(["conv"], features[2:3])[0]
    assert model.predict(["never-seen"], np.array([[1.0, 1.0, 1.0]]))[0] >= 0
    with pytest.raises(ValueError, match="no kernels to fit"):
        KernelModel().fit([], np.zeros((0, 3)), np.zeros(0))


def test_op_profiles_from_a_real_agent_train_the_layerwise_predictor(tmp_path: Path, agent, capsys) -> None:
    db, key = tmp_path / "lab.db", "vm-ort"
    fast = ["--protocol", "fixed", "--param", "count=5", "--insecure", "--agent", f"{key}={agent.address}"]
    build = ["latbench", "build", "--space", "nb201", "--devices", key, "--seed", "2", "--db", str(db), "--quiet",
             "--no-golden", *fast]
    train = ["predictor", "train", "--db", str(db), "--device", key, "--kind", "layerwise"]
    assert main([*build, "--sample", "12"]) == 0
    assert main([*train, "--layers-from", "op-profiles"]) == 2
    assert "has a per-op profile: measure them with op profiles (`hwnas latbench build" in capsys.readouterr().err
    assert main([*build, "--sample", "24", "--op-profile"]) == 0  # the first 12 again, with their profiles
    with Store(db) as store:
        profiled = [r for r in store.measurements(key) if r["op_profile_json"] != "[]"]
    assert len(profiled) >= 10
    assert all(json.loads(r["protocol_details_json"])["op_profile_ms"] > 0 for r in profiled)
    for source in ("op-profiles", "kernels"):
        assert main([*train, "--layers-from", source]) == 0, capsys.readouterr().err
        assert "saved layerwise predictor for vm-ort" in capsys.readouterr().out
    assert main([*train[:-1], "ridge", "--layers-from", "kernels"]) == 2
    assert "--layers-from is for the layer-wise predictor (kind layerwise), not ridge" in capsys.readouterr().err
    assert main([*train, "--layers-from", "guesses"]) == 2
    assert "--layers-from must be one of isolated, op-profiles, kernels" in capsys.readouterr().err
