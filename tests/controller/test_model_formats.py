"""CG -> torch module -> TFLite (fp32 and dynamic-range int8), and which backend runs which format."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from hwnas.controller.cli.main import main
from hwnas.controller.graph import GraphBuilder
from hwnas.controller.graph.model_formats import FORMATS, FormatUnavailable, check_exportable, format_for, model_format
from hwnas.controller.graph.torch_module import UnsupportedForTorch, to_torch
from hwnas.controller.spaces import get_space

from .test_graph_ir import every_op_graph, small_graph

litert_torch = pytest.importorskip("litert_torch", reason="the tflite extra (litert-torch) is not installed")
from ai_edge_litert.interpreter import Interpreter  # noqa: E402 - after the skip


def test_every_op_builds_in_torch_with_the_cgs_output_shapes() -> None:
    graph = every_op_graph().canonical()
    with torch.inference_mode():
        outs = to_torch(graph)(torch.randn(graph.input_shape))
    assert [tuple(o.shape) for o in outs] == [graph.nodes[i].out_shape for i in graph.outputs]


@pytest.mark.parametrize("space", ["nb201", "ofa-mbv3", "ofa-resnet50"])
def test_sampled_networks_build_in_torch_with_the_cgs_output_shape(space: str) -> None:
    s = get_space(space)
    rng = np.random.default_rng(4)
    for _ in range(3):
        graph = s.to_graph(s.sample(rng))
        with torch.inference_mode():
            out = to_torch(graph)(torch.randn(graph.input_shape))
        assert tuple(out.shape) == graph.nodes[graph.outputs[0]].out_shape


def test_the_same_cg_and_seed_give_the_same_weights() -> None:
    graph = every_op_graph()
    a, b, c = to_torch(graph, seed=1), to_torch(graph, seed=1), to_torch(graph, seed=2)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), c.state_dict().values(), strict=True))


def test_asymmetric_padding_is_an_explicit_pad_and_what_torch_cannot_express_is_refused() -> None:
    b = GraphBuilder((1, 3, 8, 8))
    y = b.conv(b.input, 4, 2, padding=(0, 0, 1, 1))  # TF "same" on an even kernel
    graph = b.build(b.pool("maxpool", y, 2, 2, padding=(0, 0, 1, 1)))
    with torch.inference_mode():
        assert tuple(to_torch(graph)(torch.randn(1, 3, 8, 8)).shape) == graph.nodes[-1].out_shape
    b = GraphBuilder((1, 3, 8, 8))
    bad = b.build(b.conv_transpose(b.input, 4, 3, stride=2, padding=(0, 0, 1, 1)))
    with pytest.raises(UnsupportedForTorch, match="asymmetric padding"):
        to_torch(bad)


def run_tflite(data: bytes, x: np.ndarray) -> np.ndarray:
    interpreter = Interpreter(model_content=data, num_threads=1)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_tflite_computes_what_the_torch_module_computes() -> None:
    """On a small graph of the ops NB-201 and OFA use; NB-201 networks run in LiteRT in the campaign tests."""
    graph = small_graph()
    x = np.random.default_rng(0).standard_normal(graph.input_shape).astype(np.float32)
    with torch.inference_mode():
        expected = to_torch(graph)(torch.from_numpy(x)).numpy()
    fp32 = model_format("tflite").export(graph, {})
    np.testing.assert_allclose(run_tflite(fp32, x), expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())


def test_int8_shrinks_the_weights_and_conversion_is_deterministic() -> None:
    graph = small_graph()
    fp32, int8 = model_format("tflite").export(graph, {}), model_format("tflite-int8").export(graph, {})
    assert len(int8) < 0.4 * len(fp32)  # int8 weights are a quarter of fp32 ones
    x = np.random.default_rng(0).standard_normal(graph.input_shape).astype(np.float32)
    assert run_tflite(int8, x).shape == (1, 10)
    assert fp32 == model_format("tflite").export(graph, {})  # the same content hash on agents, every time


def test_each_backend_gets_a_format_it_runs() -> None:
    assert format_for("onnxruntime") == "onnx" and format_for("litert") == "tflite"
    assert format_for("litert", "tflite-int8") == "tflite-int8"
    assert format_for("my-lab-runtime") == "onnx"
    with pytest.raises(ValueError, match="backend 'onnxruntime' runs \\['onnx'\\], not 'tflite'"):
        format_for("onnxruntime", "tflite")
    with pytest.raises(ValueError, match="unknown model format 'tflite-fp16'"):
        format_for("litert", "tflite-fp16")
    assert set(FORMATS) == {"onnx", "tflite", "tflite-int8", "tflite-int8-full", "edgetpu"}


def test_full_integer_tflite_takes_and_gives_int8() -> None:
    data = model_format("tflite-int8-full").export(small_graph(), {})
    interpreter = Interpreter(model_content=data, num_threads=1)
    interpreter.allocate_tensors()
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.ones((1, 3, 16, 16), np.int8))
    interpreter.invoke()


@pytest.mark.skipif(shutil.which("edgetpu_compiler") is not None, reason="this host has edgetpu_compiler")
def test_without_edgetpu_compiler_the_edgetpu_format_is_refused_before_anything_is_queued(
        tmp_path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(FormatUnavailable, match="edgetpu_compiler is not on PATH"):
        check_exportable("edgetpu")
    assert format_for("edgetpu") == "edgetpu"
    code = main(["latbench", "build", "--space", "nb201", "--devices", "coral", "--sample", "1", "--db",
                 str(tmp_path / "d.db"), "--agent", "coral=127.0.0.1:1", "--backend", "edgetpu", "--insecure"])
    assert code == 2 and "edgetpu_compiler is not on PATH" in capsys.readouterr().err
    assert not (tmp_path / "d.db").exists()


def test_loading_the_converter_prints_no_warning_noise() -> None:
    """TFLite conversion printed torchao's "Failed to load ..._C_cutlass_90a.abi3.so" lines and torch's
    register_constant deprecation on every run, and every int8 conversion warned that the model was "converted
    in training mode" (a fresh GraphModule's flag; the graph was exported from an eval-mode module): nothing a
    user can act on."""
    import subprocess
    import sys

    code = ("from hwnas.controller.cli.demo import small_cnn\n"
            "from hwnas.controller.graph.model_formats import _litert_torch, model_format\n"
            "_litert_torch()\n"
            "model_format('tflite-int8').export(small_cnn(8, blocks=1), {})\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert "Failed to load" not in done.stderr and "register_constant" not in done.stderr, done.stderr
    assert "training mode" not in done.stderr, done.stderr  # once per int8 conversion, of an inference graph
