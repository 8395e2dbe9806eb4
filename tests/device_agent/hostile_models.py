"""Models a hostile (or careless) client could send: valid ONNX that costs the agent as much as it can."""

from __future__ import annotations

from onnx import TensorProto, helper


def _adding_body():
    """A Loop body that adds one to its float and keeps going."""
    return helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["x_in", "one"], ["x_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x_in", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x_out", TensorProto.FLOAT, [1])],
        initializer=[helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])])


def _loop_initializers(iterations: int) -> list:
    return [helper.make_tensor("trips", TensorProto.INT64, [], [iterations]),
            helper.make_tensor("cond", TensorProto.BOOL, [], [True])]


def loop_bomb(iterations: int = 10**9) -> bytes:
    """A Loop of ``iterations`` additions on one float: a few bytes that keep a CPU busy for hours."""
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "cond", "x"], ["y"], body=_adding_body())], "loop_bomb",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        initializer=_loop_initializers(iterations))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def constant_loop_bomb(iterations: int = 10**9) -> bytes:
    """The Loop over constants only (its result is added to the input): a graph importer that folds
    constants by evaluating them would run it."""
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "cond", "x0"], ["bias"], body=_adding_body()),
         helper.make_node("Add", ["input", "bias"], ["y"])], "constant_loop_bomb",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])],
        initializer=[*_loop_initializers(iterations), helper.make_tensor("x0", TensorProto.FLOAT, [1], [0.0])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
