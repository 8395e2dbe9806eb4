"""The CG IR: shapes, canonical form and arch_id, JSON, FLOPs/params, export to onnxruntime."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from hwnas.controller.graph import ComputationGraph, GraphBuilder, ShapeError
from hwnas.controller.graph.onnx_export import to_onnx


def every_op_graph() -> ComputationGraph:
    """One graph using every op of the IR."""
    b = GraphBuilder((2, 3, 16, 16))
    x = b.op("batchnorm", b.conv(b.input, 8, 3, bias=True))
    branches = [b.op(act, x) for act in ("relu", "relu6", "hardswish", "sigmoid", "silu", "gelu", "prelu")]
    y = b.op("concat", *branches)
    y = b.channel_shuffle(b.conv(y, 16, 3, stride=2, groups=8), 2)  # grouped, shuffled (reshape-transpose-reshape)
    y = b.conv(y, 16, 3, groups=16, dilation=2)  # depthwise, dilated
    gate = b.op("hardsigmoid", b.op("global_avgpool", y))
    y = b.op("mul", y, gate)
    y = b.op("add", y, b.op("identity", y))
    y = b.op("concat", b.slice_channels(y, 12), b.slice_channels(y, 4))  # NB-101's truncation
    shifted = b.add_node("slice", [b.add_node("slice", [y], axis=2, start=1, end=8, step=1)], axis=3, start=1,
                         end=8, step=1)  # DARTS' one-pixel shift
    y = b.op("add", y, b.conv(shifted, 16, 1, padding=(0, 0, 1, 1)))  # padded back to the size of y
    last = b.add_node("transpose", [y], perm=(0, 2, 3, 1))  # ConvNeXt's channels-last block
    last = b.add_node("scale", [b.linear(b.op("layernorm", last), 16)], weight_shape=(16,))
    y = b.op("add", y, b.add_node("transpose", [last], perm=(0, 3, 1, 2)))
    y = b.pool("avgpool", y, 3, 1, 1, count_include_pad=False)
    y = b.pool("maxpool", y, 3, 2, 1, ceil_mode=True)
    up = b.pixel_shuffle(b.conv(y, 64, 1), 2)
    up = b.upsample(up, 2, "bilinear")
    up = b.conv_transpose(up, 8, 4, stride=2, padding=1)
    z = b.linear(b.op("flatten", b.op("global_avgpool", y)), 8)
    w = b.op("add", z, b.reshape(b.op("global_avgpool", up), (2, 8)))  # a flatten
    w = b.reshape(b.reshape(w, (2, 2, 2, 2)), (2, 8))
    seq = b.add_node("prepend", [b.reshape(w, (2, 4, 2))], tokens=1)  # a class token before 4 tokens of 2
    seq = b.add_node("bias", [seq], weight_shape=(5, 2))  # position embeddings
    keys = b.add_node("transpose", [b.linear(seq, 2)], perm=(0, 2, 1))
    scores = b.op("softmax", b.add_node("scalar_mul", [b.op("matmul", seq, keys)], value=0.5))
    attended = b.op("matmul", scores, seq)
    w = b.linear(b.op("flatten", b.add_node("concat", [attended, seq], axis=2)), 8)
    return b.build(w, up)


def small_graph() -> ComputationGraph:
    """Conv-BN-ReLU layers with a residual add and a classifier: quick to convert and to simulate."""
    b = GraphBuilder((1, 3, 16, 16))
    y = b.conv_bn_act(b.input, 64, 3)
    y = b.op("add", y, b.conv_bn_act(y, 64, 3))  # 37k weights: the size is the weights, not the overhead
    return b.build(b.linear(b.op("flatten", b.op("global_avgpool", y)), 10))


def test_every_op_of_the_ir_is_used_by_the_fixture() -> None:
    from hwnas.controller.graph import OPS

    assert set(every_op_graph().op_counts()) == set(OPS) - {"input"}


def test_shapes_are_inferred_and_wrong_shapes_name_the_node() -> None:
    b = GraphBuilder((1, 3, 32, 32))
    x = b.conv(b.input, 16, 3, stride=2)
    assert b.shape(x) == (1, 16, 16, 16)
    with pytest.raises(ShapeError, match="add inputs must have equal shapes"):
        b.op("add", x, b.conv(b.input, 16, 3))
    with pytest.raises(ShapeError, match="groups=5 must divide"):
        b.conv(x, 16, 3, groups=5)
    assert b.shape(b.linear(x, 10)) == (1, 16, 16, 10)  # over the last axis, at any rank
    with pytest.raises(ShapeError, match="not the batch axis"):
        b.add_node("slice", [x], axis=0, start=0, end=1, step=1)
    with pytest.raises(ShapeError, match="does not broadcast"):
        b.add_node("scale", [x], weight_shape=(16, 1, 2))


def test_canonical_form_ignores_construction_order_and_operand_order() -> None:
    def build(swap: bool) -> ComputationGraph:
        b = GraphBuilder((1, 8, 8, 8))
        if swap:
            p = b.pool("avgpool", b.input, 3, 1, 1)
            c = b.conv(b.input, 8, 3)
        else:
            c = b.conv(b.input, 8, 3)
            p = b.pool("avgpool", b.input, 3, 1, 1)
        return b.build(b.op("add", p, c) if swap else b.op("add", c, p))

    first, second = build(False), build(True)
    assert first.nodes != second.nodes
    assert first.to_json() == second.to_json() and first.arch_id == second.arch_id
    assert len(first.arch_id) == 64


def test_concat_order_matters() -> None:
    def build(order: tuple[int, int]) -> ComputationGraph:
        b = GraphBuilder((1, 8, 8, 8))
        branches = [b.conv(b.input, 8, 3), b.conv(b.input, 4, 1)]
        return b.build(b.op("concat", branches[order[0]], branches[order[1]]))

    assert build((0, 1)).arch_id != build((1, 0)).arch_id


def test_json_round_trip_and_hash_stability() -> None:
    graph = every_op_graph()
    text = graph.to_json()
    again = ComputationGraph.from_json(text)
    assert again == graph and again.arch_id == graph.arch_id
    data = json.loads(text)
    assert data["format"] == "hwnas.cg/1"
    conv = next(n for n in data["nodes"] if n["op"] == "conv")
    assert {"kernel", "stride", "padding", "dilation", "groups", "bias", "out_shape", "inputs"} <= set(conv)


def test_malformed_json_names_the_field() -> None:
    data = json.loads(every_op_graph().to_json())
    del data["nodes"][1]["out_shape"]
    with pytest.raises(ValueError, match=r"nodes\[1\] lacks field 'out_shape'"):
        ComputationGraph.from_dict(data)
    data = json.loads(every_op_graph().to_json())
    data["nodes"][1]["out_shape"][1] += 1
    with pytest.raises(ShapeError, match="node 1"):
        ComputationGraph.from_dict(data)


def test_nodes_that_lead_nowhere_are_pruned() -> None:
    b = GraphBuilder((1, 3, 8, 8))
    b.conv(b.input, 4, 3)  # dead branch
    out = b.op("relu", b.input)
    assert b.build(out).op_counts() == {"relu": 1}


def test_macs_and_params_of_a_conv_by_hand() -> None:
    b = GraphBuilder((1, 16, 10, 10))
    b.conv(b.input, 32, 3, stride=2, groups=4, bias=True)
    g = b.build()
    assert g.macs() == 1 * 32 * 5 * 5 * (16 // 4) * 9
    assert g.params() == 32 * 4 * 9 + 32


def test_export_runs_in_onnxruntime_and_shape_inference_agrees_on_every_node() -> None:
    graph = every_op_graph().canonical()
    model = to_onnx(graph, check=True)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*inferred.graph.value_info, *inferred.graph.output]}
    names = {i: f"n{i}" for i in range(1, len(graph.nodes))}
    names.update({o: f"output{k}" for k, o in enumerate(graph.outputs)})
    for index, name in names.items():
        assert shapes[name] == list(graph.nodes[index].out_shape), f"node {index} {graph.nodes[index].op}"
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"input": np.random.default_rng(0).standard_normal((2, 3, 16, 16), np.float32)})
    assert [list(o.shape) for o in outputs] == [list(graph.nodes[o].out_shape) for o in graph.outputs]
    assert all(np.isfinite(o).all() for o in outputs)


def test_every_op_round_trips_through_onnx() -> None:
    from hwnas.controller.graph.onnx_import import from_onnx

    graph = every_op_graph()
    assert from_onnx(to_onnx(graph)).to_json() == graph.to_json()


def test_export_is_deterministic_for_a_seed() -> None:
    graph = every_op_graph()
    assert to_onnx(graph, seed=3).SerializeToString() == to_onnx(graph, seed=3).SerializeToString()
    assert to_onnx(graph, seed=3).SerializeToString() != to_onnx(graph, seed=4).SerializeToString()


def test_numpy_integers_give_the_same_graph_as_python_ints() -> None:
    def build(cast) -> ComputationGraph:
        b = GraphBuilder((1, 3, 8, 8))
        return b.build(b.conv(b.input, cast(4), cast(3), stride=cast(1)))

    assert build(np.int64).to_json() == build(int).to_json()


def test_with_batch_changes_every_leading_axis_and_runs_at_that_batch() -> None:
    graph = every_op_graph().with_batch(1)  # the fixture takes 2 samples
    big = graph.with_batch(5)
    assert big.input_shape == (5, 3, 16, 16) and graph.with_batch(1) is graph
    assert all(n.out_shape[0] == 5 for n in big.nodes)
    x = np.random.default_rng(0).standard_normal(big.input_shape).astype(np.float32)
    outs = ort.InferenceSession(to_onnx(big).SerializeToString()).run(None, {"input": x})
    assert [o.shape for o in outs] == [big.nodes[i].out_shape for i in big.outputs]
    assert big.with_batch(1).to_json() == graph.to_json()
    with pytest.raises(ValueError, match="batch must be >= 1"):
        graph.with_batch(0)


def test_the_canonical_form_is_computed_once_and_is_its_own_canonical_form() -> None:
    """Exports and arch_id share one canonical graph, cached on the graph as its own canonical form: that is
    only right if canonicalising the canonical nodes afresh (no cache) gives them back unchanged."""
    from hwnas.controller.spaces import get_space

    graph = get_space("nb201").to_graph([0, 1, 2, 3, 4, 1])
    canonical = graph.canonical()
    assert graph.canonical() is canonical and canonical.canonical() is canonical
    recomputed = ComputationGraph(canonical.nodes, canonical.outputs).canonical()
    assert recomputed.nodes == canonical.nodes and recomputed.outputs == canonical.outputs
    assert recomputed.arch_id == graph.arch_id


def test_an_arch_id_stays_what_datasets_already_store() -> None:
    """Stores key every measurement by arch_id: a change of the canonical form would orphan them all.
    The value is the one the code computed on 2026-12-02 (a row of a search's measured.csv)."""
    from hwnas.controller.spaces import get_space

    space = get_space("nb201")
    x = space.from_string("|avg_pool_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|skip_connect~1|none~2|")
    assert space.to_graph(x).arch_id == "dad1662a3f7c1fef19a65d4977ab9893d7ece45ccdd2ff799d5bdaa409c6e734"


def test_exported_bytes_stay_what_agents_and_datasets_already_hold() -> None:
    """Agents cache models by the sha256 of these bytes, so a change makes every agent take each model once more;
    it must be deliberate. Changed on 2026-12-06: models declare every tensor's shape (value_info), from which
    agents estimate a batch's activation memory. On 2026-12-07 the fixture gained the ops of #38 (slice, layernorm,
    scale, linear over the last axis, matmul, softmax, scalar_mul, bias, prepend, concat along an axis), so its
    digests moved; NB-201's bytes, which agents hold, did not. Later that day nodes were ordered by their shapes
    per sample, so a graph taking 2 samples (this one) orders its nodes as its batch-1 form does (an imported
    network's weights fit every batch): its digests moved again; batch-1 graphs' (NB-201's) did not."""
    import hashlib

    from hwnas.controller.graph.onnx_export import to_onnx_bytes
    from hwnas.controller.spaces import get_space

    def digest(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    graph = every_op_graph()
    assert digest(to_onnx_bytes(graph)) == "ab15095201d666077c711fdde5fb406a80089506a9e485dba5e2004b4fb69ef5"
    assert digest(to_onnx_bytes(graph, seed=3, metadata={"b": "1", "a": "x"})) == \
        "9850dad3ef4e64f4745e0eecbbef8489cf3cb23813b7ccd4bb74c77f5b160a02"
    nb201 = get_space("nb201")
    assert digest(to_onnx_bytes(nb201.to_graph([4, 3, 2, 1, 1, 0]))) == \
        "5adb5d6141c356d87a4eedbc3085533a60eef095433a6e45ff304d3d0dcb0781"


def test_exporting_needs_no_onnx_package() -> None:
    """Importing onnx (and its ml_dtypes) took over half a second of every search's start."""
    from tests.conftest import modules_loaded_by

    code = ("from hwnas.controller.graph.onnx_export import to_onnx_bytes\n"
            "from hwnas.controller.spaces import get_space\nimport hwnas.controller.cli.main\n"
            "to_onnx_bytes(get_space('nb201').to_graph([4, 3, 2, 1, 1, 0]))")
    assert modules_loaded_by(code, ("onnx", "ml_dtypes")) == []
