"""ONNX -> CG on torchvision-style CNNs and super-resolution nets; FLOPs/params cross-checked."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn

from hwnas.controller.graph.onnx_export import to_onnx
from hwnas.controller.graph.onnx_import import UnsupportedOpsError, from_onnx

from .reference_models import EDSR, FSRCNN, export_onnx, mobilenet_v3_large, resnet50, vgg16

REFERENCE = {
    "resnet50": (resnet50, (1, 3, 224, 224)),
    "vgg16": (vgg16, (1, 3, 224, 224)),
    "mobilenet_v3_large": (mobilenet_v3_large, (1, 3, 224, 224)),
    "edsr": (EDSR, (1, 3, 48, 48)),
    "fsrcnn": (FSRCNN, (1, 1, 32, 32)),
}


@pytest.fixture(scope="module")
def imported() -> dict:
    torch.manual_seed(0)
    out = {}
    for name, (factory, shape) in REFERENCE.items():
        model = factory().eval()
        out[name] = (model, shape, from_onnx(export_onnx(model, shape)))
    return out


def fvcore_macs(model: nn.Module, shape) -> int:
    """fvcore counts one multiply-add as one flop; keep its conv and linear rows (our MACs' definition)."""
    analysis = FlopCountAnalysis(model, torch.randn(*shape))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    rows = analysis.by_operator()
    return sum(v for k, v in rows.items() if k in ("conv", "linear", "addmm", "matmul", "conv_transpose"))


@pytest.mark.parametrize("name", ["resnet50", "vgg16", "mobilenet_v3_large", "edsr"])
def test_macs_agree_with_fvcore_within_one_percent(imported, name: str) -> None:
    model, shape, graph = imported[name]
    assert graph.macs() == pytest.approx(fvcore_macs(model, shape), rel=0.01)


@pytest.mark.parametrize("name", list(REFERENCE))
def test_params_agree_with_torch(imported, name: str) -> None:
    model, _, graph = imported[name]
    assert graph.params() == pytest.approx(sum(p.numel() for p in model.parameters()), rel=0.01)


def test_published_figures(imported) -> None:
    """torchvision's model cards: ResNet-50 4.09 GMACs / 25.56 M params, VGG-16 15.47 G / 138.36 M,
    MobileNetV3-Large 0.22 G / 5.48 M."""
    for name, gmacs, mparams in (("resnet50", 4.09, 25.56), ("vgg16", 15.47, 138.36),
                                 ("mobilenet_v3_large", 0.22, 5.48)):
        graph = imported[name][2]
        assert graph.macs() / 1e9 == pytest.approx(gmacs, abs=0.01)
        assert graph.params() / 1e6 == pytest.approx(mparams, abs=0.01)


def test_op_inventory_of_mobilenet_v3(imported) -> None:
    graph = imported["mobilenet_v3_large"][2]
    counts = graph.op_counts()
    assert counts["hardswish"] == 21 and counts["hardsigmoid"] == 8 and counts["mul"] == 8  # 8 SE blocks
    depthwise = [n for n in graph.nodes if n.op == "conv" and n.attrs["groups"] > 1]
    assert len(depthwise) == 15 and all(n.attrs["groups"] == n.out_shape[1] for n in depthwise)


@pytest.mark.parametrize("name", list(REFERENCE))
def test_round_trip_gives_the_same_canonical_form_and_runs(imported, name: str) -> None:
    model, shape, graph = imported[name]
    exported = to_onnx(graph, check=True)
    assert from_onnx(exported).to_json() == graph.to_json()
    if name == "vgg16":  # 138 M parameters: a 550 MB session (~15 s) runs no op the other four do not
        return
    session = ort.InferenceSession(exported.SerializeToString(), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"input": np.zeros(shape, np.float32)})
    with torch.no_grad():
        assert out.shape == tuple(model(torch.zeros(*shape)).shape)


def test_unsupported_ops_are_listed_by_name_never_dropped() -> None:
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)
            self.norm = nn.LayerNorm([8, 6, 6])

        def forward(self, x):
            y = self.norm(self.conv(x))
            return torch.erf(y.flatten(1))  # an Erf outside GELU's pattern

    with pytest.raises(UnsupportedOpsError) as info:
        from_onnx(export_onnx(Odd(), (1, 3, 8, 8)))
    assert "Erf x1" in str(info.value)
    assert "LayerNormalization" in str(info.value) or "ReduceMean" in str(info.value)


def test_dynamic_shapes_need_an_input_shape() -> None:
    model = export_onnx(EDSR(blocks=1, channels=8), (1, 3, 24, 24), dynamic_batch=True)
    with pytest.raises(ValueError, match=r"input 'x' has dynamic dims \['\?', 3, 24, 24\]; give an input shape"):
        from_onnx(model)
    graph = from_onnx(model, input_shape=(4, 3, 24, 24))
    assert graph.input_shape == (4, 3, 24, 24) and graph.nodes[graph.outputs[0]].out_shape == (4, 3, 48, 48)
    with pytest.raises(ValueError, match="does not fit"):
        from_onnx(model, input_shape=(4, 1, 24, 24))


def _graph_import(tmp_path, capsys, data: bytes, *extra: str) -> tuple[int, str]:
    from hwnas.controller.cli.main import main

    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    code = main(["graph", "import", str(path), *extra])
    return code, capsys.readouterr().err


def test_a_loop_over_constants_is_refused_not_evaluated(tmp_path, capsys) -> None:
    """Constant folding ran onnx.reference on a 10^9-iteration Loop of constants: the import never ended."""
    import time

    from tests.device_agent.hostile_models import constant_loop_bomb

    t0 = time.perf_counter()
    code, err = _graph_import(tmp_path, capsys, constant_loop_bomb())
    assert time.perf_counter() - t0 < 30
    assert code == 2 and "unsupported ONNX ops: Loop x1" in err


def test_a_constant_too_large_to_compute_is_refused(tmp_path, capsys) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ConstantOfShape", ["shape"], ["big"]), helper.make_node("Add", ["input", "big"], ["y"])],
        "big", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[helper.make_tensor("shape", TensorProto.INT64, [2], [100000, 100000])])
    code, err = _graph_import(tmp_path, capsys, helper.make_model(graph).SerializeToString())
    assert code == 2 and "ConstantOfShape" in err and "not imported" in err


def test_garbage_truncated_and_escaping_models_get_one_line(tmp_path, capsys) -> None:
    import onnx
    from onnx import TensorProto

    from hwnas.controller.cli.demo import small_cnn
    from hwnas.controller.graph.onnx_export import to_onnx_bytes

    good = to_onnx_bytes(small_cnn(8, blocks=1))
    for data, says in ((b"\x12\xff garbage" * 100, "not an ONNX model"), (good[: len(good) // 2], "not an ONNX model")):
        code, err = _graph_import(tmp_path, capsys, data)
        assert code == 2 and says in err and "Traceback" not in err, err
    escaping = onnx.load_from_string(good)
    weight = escaping.graph.initializer[0]
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "../../etc/passwd"
    code, err = _graph_import(tmp_path, capsys, escaping.SerializeToString())
    assert code == 2 and "external data is refused" in err and "points outside" in err


def test_running_out_of_memory_while_importing_is_one_line(tmp_path, capsys, monkeypatch) -> None:
    """A stand-in for a model too large for this machine's memory: onnx.load raising MemoryError."""
    import onnx

    from hwnas.controller.cli.demo import small_cnn
    from hwnas.controller.graph.onnx_export import to_onnx_bytes

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(onnx, "load", out_of_memory)
    code, err = _graph_import(tmp_path, capsys, to_onnx_bytes(small_cnn(8, blocks=1)))
    assert code == 2 and "not enough memory to load" in err and "Traceback" not in err


def test_negative_dims_and_an_unknown_opset_are_refused_in_one_line(tmp_path, capsys) -> None:
    """`graph import` accepted negative dims and opset 99."""
    import onnx
    from onnx import TensorProto, helper

    def relu(dims, opset: int = 17) -> bytes:
        graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims)],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, dims)])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()

    code, err = _graph_import(tmp_path, capsys, relu([1, -3, 8, 8]))
    assert code == 2 and "declares negative dims [-3]" in err and len(err.splitlines()) == 1, err
    code, err = _graph_import(tmp_path, capsys, relu([1, 3, 8, 8], opset=99))
    newest = onnx.defs.onnx_opset_version()
    assert code == 2 and f"imports ONNX opset 99; this onnx knows opsets 1 to {newest}" in err, err
    with pytest.raises(SystemExit):
        _graph_import(tmp_path, capsys, relu(["n", 3, 8, 8]), "--input-shape", "1,-3,8,8")
    assert "positive dims" in capsys.readouterr().err
    with pytest.raises(ValueError, match="must be positive dims"):
        from_onnx(relu(["n", 3, 8, 8]), input_shape=(0, 3, 8, 8))


def _as_strided_head(indices: np.ndarray) -> bytes:
    """ConvNeXt's head as torch's dynamo exporter writes it: the pooled map flattened to one axis, gathered back
    by constant indices (``as_strided``), reshaped to (N, C), then the classifier."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat"),
             numpy_helper.from_array(indices.astype(np.int64), "idx"),
             numpy_helper.from_array(np.array([1, 8], dtype=np.int64), "nc"),
             numpy_helper.from_array(rng.standard_normal((4, 8)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")]
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["pooled"]),
             helper.make_node("Reshape", ["pooled", "flat"], ["flattened"]),
             helper.make_node("Gather", ["flattened", "idx"], ["strided"], axis=0),
             helper.make_node("Reshape", ["strided", "nc"], ["view"]),
             helper.make_node("Gemm", ["view", "w", "b"], ["y"], transB=1)]
    graph = helper.make_graph(nodes, "head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 5, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]).SerializeToString()


def test_the_dynamo_exporters_as_strided_in_order_is_a_reshape_and_out_of_order_is_refused() -> None:
    from hwnas.controller.graph.onnx_export import to_onnx_bytes
    from hwnas.controller.graph.onnx_import import import_onnx

    in_order = _as_strided_head(np.arange(8).reshape(1, 8, 1, 1))
    imported = import_onnx(in_order)
    assert imported.graph.op_counts() == {"global_avgpool": 1, "flatten": 1, "linear": 1}
    x = np.random.default_rng(1).standard_normal((1, 8, 5, 5)).astype(np.float32)
    sessions = [ort.InferenceSession(data, providers=["CPUExecutionProvider"])
                for data in (in_order, to_onnx_bytes(imported.graph, weights=imported.weights))]
    expected, got = (s.run(None, {s.get_inputs()[0].name: x})[0] for s in sessions)
    assert np.abs(expected - got).max() <= 1e-5 * np.abs(expected).max()
    # a permutation is not a view: the flattened map (a leading axis of 8 per sample) is gathered out of order
    with pytest.raises(UnsupportedOpsError, match="Gather\\(other than one position of a non-batch axis\\)"):
        from_onnx(_as_strided_head(np.arange(8)[::-1].reshape(1, 8, 1, 1)))
