"""Search spaces: encodings, strings, NB-201 index/Eagle consistency, published sizes and FLOPs ranges,
and a property test that random samples export to ONNX and run in onnxruntime."""

import os

import numpy as np
import onnxruntime as ort
import pytest

from hwnas.controller.data import nb201_table
from hwnas.controller.graph.onnx_export import to_onnx_bytes
from hwnas.controller.spaces import SPACES, get_space
from hwnas.controller.spaces.nb201 import NasBench201

LONG = os.environ.get("HWNAS_LONG") == "1"


def test_registry_lists_the_spaces_and_refuses_unknown_names() -> None:
    assert set(SPACES) == {"nb201", "nb101", "nas-bench-macro", "fbnet", "ofa-mbv3", "ofa-resnet50", "transformer",
                           "hat"}
    known = r"\['fbnet', 'hat', 'nas-bench-macro', 'nb101', 'nb201'"
    with pytest.raises(ValueError, match=rf"unknown search space 'nb-201'; known: {known}"):
        get_space("nb-201")


# -- NB-201 -------------------------------------------------------------------------------------------
def test_nb201_string_index_and_eagle_vector_agree_with_the_table_on_every_row() -> None:
    space = NasBench201()
    rows = nb201_table()
    assert len(rows) == space.size() == 15_625
    for row in rows:
        x = space.from_string(row["arch_str"])
        assert space.to_string(x) == row["arch_str"]
        assert space.to_index(x) == int(row["nb201_index"])
        assert space.from_index(int(row["nb201_index"])) == x
        assert space.is_connected(x) == space.has_network(x) == (row["connected"] == "1")
    # Eagle's vector for the string in its own docs (none=0 skip=1 1x1=2 3x3=3 pool=4, string order).
    eagle = space.to_eagle_vector(space.from_string(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"))
    assert eagle == [3, 3, 4, 1, 3, 1]


def test_nb201_enumeration_is_the_whole_space() -> None:
    encodings = list(NasBench201().enumerate())
    assert len(encodings) == 15_625 and len({tuple(x) for x in encodings}) == 15_625


def test_nb201_published_flops_and_params_range() -> None:
    """NAS-Bench-201 (CIFAR-10): FLOPs 7.78-220.11 M, params 0.073-1.532 M."""
    space = NasBench201()
    largest = space.to_graph([3] * 6)
    smallest = space.to_graph(space.from_string(
        "|skip_connect~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|"))
    assert largest.macs() / 1e6 == pytest.approx(220.11, abs=0.01)
    assert largest.params() / 1e6 == pytest.approx(1.532, abs=0.001)
    assert smallest.macs() / 1e6 == pytest.approx(7.78, abs=0.01)
    assert smallest.params() / 1e6 == pytest.approx(0.073, abs=0.001)
    rng = np.random.default_rng(0)
    for _ in range(200):
        g = space.to_graph(space.sample(rng))
        assert smallest.macs() <= g.macs() <= largest.macs()


def test_nb201_cell_structure_follows_latbench_pruning() -> None:
    space = NasBench201()
    # node 1 <- conv3x3 feeds nothing (edges from 1 are none): it must be pruned away.
    graph = space.to_graph(space.from_string(
        "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|"))
    counts = graph.op_counts()
    assert counts["conv"] == 1 + 2 * 3  # stem + two reduction blocks (two 3x3 convs and a 1x1 shortcut)
    assert counts["identity"] == 15 * 2  # two skip edges per cell, 15 cells
    assert graph.input_shape == (1, 3, 32, 32) and graph.nodes[graph.outputs[0]].out_shape == (1, 10)
    assert NasBench201(num_classes=100).to_graph([3] * 6).nodes[-1].out_shape == (1, 100)
    with pytest.raises(ValueError, match="no path from input to output"):
        space.to_graph([0] * 6)


@pytest.mark.parametrize("text, match", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|", "3 '\\+'-separated nodes"),
    ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv'; allowed: \\['none'"),
    ("|none~0|+|none~0|none~0|+|none~0|none~1|none~2|", "must read from node 1"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 must have 2 edge"),
])
def test_nb201_malformed_strings_name_the_bad_part(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        NasBench201().from_string(text)


# -- encodings of every space --------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(SPACES))
def test_encoding_round_trips_and_mutation_stays_valid(name: str) -> None:
    space = get_space(name)
    low, high = space.bounds()
    assert len(low) == len(high) == space.n_var and (low <= high).all()
    rng = np.random.default_rng(1)
    for _ in range(50):
        x = space.sample(rng)
        assert space.canonical(x) == x
        assert space.from_string(space.to_string(x)) == x
        assert space.encode(space.decode(x)) == x
        child = space.mutate(x, rng)
        assert child != x and space.canonical(child) == child


@pytest.mark.parametrize("name", sorted(SPACES))
def test_bad_encodings_name_the_variable_and_range(name: str) -> None:
    space = get_space(name)
    with pytest.raises(ValueError, match=f"must have {space.n_var} variables"):
        space.validate([0] * (space.n_var + 1))
    bad = [0] * space.n_var
    bad[3] = 9
    with pytest.raises(ValueError, match=r"variable 3 \(.+\) must be in \[0, \d\], got 9"):
        space.to_graph(bad)
    with pytest.raises(ValueError, match="must be integers"):
        space.validate([0.5] + [0] * (space.n_var - 1))


def test_ofa_mbv3_encoding_masks_inactive_layers_and_matches_ofa() -> None:
    space = get_space("ofa-mbv3")
    assert space.n_var == 45
    x = [0] * 5 + [2] * 20 + [1] * 20  # depth 2 everywhere: layers 2 and 3 of each stage inactive
    arch = space.decode(x)
    assert arch["d"] == [2] * 5 and arch["ks"][:4] == [7, 7, 0, 0] and arch["e"][:4] == [4, 4, 0, 0]
    canonical = space.canonical(x)
    assert canonical[5 + 2] == 0 and canonical[5 + 20 + 3] == 0 and space.to_graph(x) == space.to_graph(canonical)
    assert space.encode(arch) == canonical
    assert space.to_string(x).startswith("d2:k7e4,k7e4|")
    with pytest.raises(ValueError, match=r"kernel must be in \(3, 5, 7\)"):
        space.from_string("d2:k9e4,k7e4|d2:k3e3,k3e3|d2:k3e3,k3e3|d2:k3e3,k3e3|d2:k3e3,k3e3")


def test_ofa_mbv3_published_size_and_structure() -> None:
    """OFA: 'more than 10^19' subnets = (sum over depth 2..4 of (3 kernels x 3 ratios)^d)^5."""
    space = get_space("ofa-mbv3")
    assert space.size() == (9**2 + 9**3 + 9**4) ** 5
    assert 2.1e19 < space.size() < 2.2e19
    low, high = space.bounds()
    smallest, largest = space.to_graph(low.tolist()), space.to_graph(high.tolist())
    # OFA reports specialised w1.0 subnets from ~150 to ~450 MMACs at 224: they lie in the space's range.
    assert smallest.macs() < 150e6 and largest.macs() > 450e6
    counts = largest.op_counts()
    assert counts["mul"] == 3 * 4 and counts["hardsigmoid"] == 12  # SE in 3 stages x 4 layers
    assert get_space("ofa-mbv3", resolution=160).to_graph(high.tolist()).input_shape == (1, 3, 160, 160)


def test_ofa_resnet50_contains_resnet50d() -> None:
    """Stem at full depth, 3/4/6/3 blocks, expand 0.25, width 1.0 is ResNet-50-D: 4.3 GMACs, 25.6 M params."""
    space = get_space("ofa-resnet50")
    assert space.n_var == 5 + 18 + 6
    x = space.canonical([2, 1, 2, 2, 1] + [1] * 18 + [2] * 6)
    graph = space.to_graph(x)
    assert graph.macs() / 1e9 == pytest.approx(4.33, abs=0.01)
    assert graph.params() / 1e6 == pytest.approx(25.58, abs=0.01)
    assert space.to_string(x).startswith("stem:d2,w1.0/1.0|s0:w1.0:e0.25,0.25,0.25|")
    low, high = space.bounds()
    assert space.to_graph(low.tolist()).macs() < 1e9 < 7e9 < space.to_graph(high.tolist()).macs()


# -- property test: random samples run in onnxruntime ----------------------------------------------------
# Short forms: NB-201's 60 samples meet each of its 5 ops on each of its 6 edges (a miss: 0.8^60, ~1e-6).
PROPERTY_SAMPLES = {"nb201": (60, 300), "ofa-mbv3": (30, 300), "ofa-resnet50": (12, 300), "nb101": (15, 300),
                    "nas-bench-macro": (30, 300), "fbnet": (15, 300), "transformer": (10, 300),
                    "hat": (3, 60)}  # HAT's networks: 20-45 M parameters, a 170 MB export each


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SPACES))
def test_random_samples_export_and_run_in_onnxruntime(name: str) -> None:
    """Default suite: a short form (``PROPERTY_SAMPLES``; OFA at 64 px). HWNAS_LONG=1: 300 at full size."""
    short, long_ = PROPERTY_SAMPLES[name]
    options = {"resolution": 64} if name.startswith("ofa") and not LONG else {}
    options = {"sequence": 32} if name in ("transformer", "hat") and not LONG else options
    space = get_space(name, **options)
    rng = np.random.default_rng(7)
    seen = set()
    for _ in range(long_ if LONG else short):
        x = space.sample(rng)
        if not space.has_network(x):
            continue
        graph = space.to_graph(x)
        seen.add(graph.arch_id)
        session = ort.InferenceSession(to_onnx_bytes(graph, check=True), providers=["CPUExecutionProvider"])
        (out,) = session.run(None, {i.name: np.ones(shape, np.float32)
                                    for i, shape in zip(session.get_inputs(), graph.input_shapes, strict=True)})
        assert out.shape == graph.nodes[graph.outputs[0]].out_shape and np.isfinite(out).all()
    assert len(seen) > 1


def test_the_nb201_reference_network_runs_the_ops_pruning_drops_and_only_those() -> None:
    """HW-NAS-Bench timed NB-201's reference code, which runs every edge op; its GNN features must see them."""
    from hwnas.controller.spaces.nb201 import NasBench201

    space = NasBench201()
    live = [3, 0, 3, 0, 0, 3]  # the chain 0->1->2->3 of 3x3 convs, every other edge none: nothing to prune
    assert space.reference_graph(live).arch_id == space.to_graph(live).arch_id  # nothing to prune: one network
    dead_in = [0, 3, 3, 2, 2, 3]  # node 1 fed by nothing (0->1 none): 1->2 and 1->3 run on zeros in the reference
    dead_out = [3, 3, 0, 3, 0, 0]  # nodes 1 and 2 feed nothing: 0->1 and 0->2 run for nothing
    for x, extra_convs in ((dead_in, 2), (dead_out, 2)):
        pruned, reference = space.to_graph(x), space.reference_graph(x)
        convs = [sum(n.op == "conv" for n in g.nodes) for g in (pruned, reference)]
        assert convs[1] - convs[0] == extra_convs * 15, (x, convs)  # the dead edges' convs, in each of 15 cells
        assert reference.macs() > pruned.macs()
    with pytest.raises(ValueError, match="no path from input to output"):
        space.reference_graph([0, 3, 3, 0, 3, 0])


# -- the elastic transformer (#38) ---------------------------------------------------------------------
def test_transformer_space_masks_inactive_layers_and_counts_as_hat_does() -> None:
    """HAT/LINAS's elastic axes: embedding {512, 640}, 1-6 layers, per layer heads {4, 8} and FFN widths."""
    space = get_space("transformer", sequence=32)
    x = space.from_string("e512:h4,8:f1024,3072")
    assert x == [0, 1, 0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0] and space.to_string(x) == "e512:h4,8:f1024,3072"
    assert space.canonical([0, 1, 0, 1, 1, 1, 1, 1, 0, 2, 2, 2, 2, 2]) == x  # layers 2-5 are masked
    assert space.size() == 2 * sum(6 ** n for n in range(1, 7))
    graph = space.to_graph(x)
    counts = graph.op_counts()
    assert graph.input_shape == (1, 32, 640) and graph.nodes[graph.outputs[0]].out_shape == (1, 32, 512)
    assert counts["slice"] == 1 and counts["softmax"] == 2 and counts["layernorm"] == 4  # post-norm, 2 layers
    # per layer: Q, K, V and output projections, two FFN linears; attention's two matmuls per head group
    d, tokens = 512, 32
    per_layer = [4 * tokens * d * d + 2 * tokens * d * f + 2 * tokens * tokens * d for f in (1024, 3072)]
    assert graph.macs() == sum(per_layer)
    assert space.options_for_input(graph.input_shape) == {"sequence": 32}
    with pytest.raises(ValueError, match="2 heads values but 1 ffn values"):
        space.from_string("e512:h4,8:f1024")
    with pytest.raises(ValueError, match=r"no option\(s\) \['resolution'\]; it takes: \['batch_size', 'sequence'\]"):
        get_space("transformer", resolution=224)
