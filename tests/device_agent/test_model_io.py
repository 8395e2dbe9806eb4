"""The agent's own readers of a model's inputs and outputs (ONNX protobuf, TFLite FlatBuffer), which a vendor
tool's output check needs on a host without the device's runtime: they agree with the onnx package and
with LiteRT's interpreter, and hostile bytes get InvalidInput, never another exception."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwnas.device_agent.errors import InvalidInput
from hwnas.device_agent.onnx_metadata import graph_io
from hwnas.device_agent.tensors import InputSpec
from hwnas.device_agent.tflite_metadata import model_io


def old_style_model() -> bytes:
    """Two real inputs (one with a symbolic batch), a weight also listed as an input (as exporters before
    IR 4 did), an int64 input and two outputs."""
    weight = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"]), helper.make_node("Cast", ["ids"], ["ids_f"], to=1),
         helper.make_node("Identity", ["ids_f"], ["z"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4]),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3]),
         helper.make_tensor_value_info("ids", TensorProto.INT64, [2, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3]),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 5])], initializer=[weight])
    return helper.make_model(graph).SerializeToString()


def test_the_onnx_reader_gives_the_graphs_inputs_without_its_weights_and_its_outputs() -> None:
    data = old_style_model()
    inputs, outputs = graph_io(data)
    assert inputs == [InputSpec("x", (None, 4), "float32"), InputSpec("ids", (2, 5), "int64")]
    assert outputs == [InputSpec("y", (None, 3), "float32"), InputSpec("z", (2, 5), "float32")]
    assert [o.name for o in outputs] == [o.name for o in onnx.load_from_string(data).graph.output]


@pytest.mark.parametrize("data", [b"", b"\x3a\x02\x62", b"\xff" * 12, b"TFL3" * 8])
def test_the_onnx_reader_refuses_what_is_not_an_onnx_model(data: bytes) -> None:
    with pytest.raises(InvalidInput, match="not an ONNX model"):
        graph_io(data)


def test_the_tflite_reader_refuses_what_is_not_a_tflite_model() -> None:
    with pytest.raises(InvalidInput, match="no 'TFL3' file identifier"):
        model_io(old_style_model())
    with pytest.raises(InvalidInput, match="not a TFLite model"):
        model_io(b"\x10\x00\x00\x00TFL3" + b"\xff" * 8)  # the root offset points past the end
