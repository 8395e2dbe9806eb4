"""CG -> ONNX: a model onnxruntime can run, with random weights.

The exported model is for timing, not accuracy: weights are drawn from a
seeded generator (so the same CG yields the same bytes and the same content
hash on the agent). An imported network's own weights can be given instead
(``onnx_import.import_onnx``): the export then computes what the original
did. Opset 20 keeps the models loadable by the onnxruntime builds found on
edge boards; SiLU (no ONNX op before opset 24) is exported as
x * sigmoid(x), which the importer folds back.
"""

from __future__ import annotations

import functools
import math
import numbers
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hwnas.controller.graph.ir import ComputationGraph, Node
from hwnas.protos.onnx_format.onnx_ml_pb2 import AttributeProto, ModelProto, NodeProto, TensorProto, ValueInfoProto

if TYPE_CHECKING:
    import onnx

OPSET = 20
INPUT_NAME = "input"


_POOL_SIZE = 1 << 20


@functools.cache
def _random_pool(seed: int) -> np.ndarray:
    """One megafloat of uniform noise in [-1, 1) per seed; weights are windows of it.

    Drawing fresh normals for every weight made export of an OFA subnet take ~60 ms; copying windows
    of a cached pool is memory speed. Timing needs bounded, non-zero, deterministic values, not
    independent ones.
    """
    pool = np.random.default_rng(seed).random(_POOL_SIZE, dtype=np.float32)
    pool *= 2
    pool -= 1
    pool.setflags(write=False)
    return pool


class _Emitter:
    def __init__(self, graph: ComputationGraph, seed: int, given: Mapping[str, np.ndarray]) -> None:
        self.graph = graph
        self.given = given
        self.pool = _random_pool(seed)
        self.offset = 0
        self.model = ModelProto()
        multi = len(graph.outputs) > 1
        self.output_names = {index: f"output{k}" if multi else "output" for k, index in enumerate(graph.outputs)}
        inputs = graph.input_nodes  # "input", or "input0", "input1"... in the order the network takes them
        self.input_names = {index: f"{INPUT_NAME}{k}" if len(inputs) > 1 else INPUT_NAME
                            for k, index in enumerate(inputs)}

    def name(self, index: int) -> str:
        return self.input_names.get(index) or self.output_names.get(index, f"n{index}")

    def weight(self, name: str, shape: tuple[int, ...], fan_in: int) -> str:
        if name in self.given:
            return self.const(name, np.zeros(shape))
        size = math.prod(shape)
        start = self.offset % _POOL_SIZE
        self.offset += size + 1  # consecutive weights start at different phases of the pool
        data = np.resize(np.roll(self.pool, -start), size).reshape(shape) if size > _POOL_SIZE - start \
            else self.pool[start:start + size].reshape(shape).copy()
        data *= np.float32(np.sqrt(3.0 / max(fan_in, 1)))  # unit-variance activations, as He-uniform
        return self._initializer(name, data)

    def const(self, name: str, values, dtype=np.float32) -> str:
        """``values``, or the given weight of that name (of the same shape)."""
        values = np.asarray(values, dtype=dtype)
        if name in self.given:
            given = np.asarray(self.given[name], dtype=dtype)
            if given.shape != values.shape:
                raise ValueError(f"the given weight {name} has shape {list(given.shape)}; the graph needs "
                                 f"{list(values.shape)}")
            values = given
        return self._initializer(name, values)

    def scalar(self, name: str, default: float) -> float:
        """A given scalar (an imported norm's epsilon), else ``default``."""
        return float(np.asarray(self.given[name]).reshape(-1)[0]) if name in self.given else default

    def _initializer(self, name: str, data: np.ndarray) -> str:
        """Written straight into the model: building lists and copying them in cost more than the weights."""
        tensor = self.model.graph.initializer.add()
        tensor.name = name
        tensor.data_type = _TENSOR_TYPES[data.dtype]
        tensor.dims.extend(data.shape)
        tensor.raw_data = data.tobytes()
        return name

    def emit(self, op_type: str, inputs: list[str], output: str, **attrs) -> None:
        node: NodeProto = self.model.graph.node.add()
        node.op_type = op_type
        node.input.extend(inputs)
        node.output.append(output)
        node.name = output
        node.attribute.extend(_attribute(key, value) for key, value in sorted(attrs.items()))


_TENSOR_TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64}


def _attribute(name: str, value: Any) -> AttributeProto:
    """An ONNX attribute typed by its value, as ``onnx.helper.make_attribute`` types the ones we write."""
    attr = AttributeProto(name=name)
    if isinstance(value, numbers.Integral):
        attr.i, attr.type = int(value), AttributeProto.INT
    elif isinstance(value, numbers.Real):
        attr.f, attr.type = float(value), AttributeProto.FLOAT
    elif isinstance(value, str):
        attr.s, attr.type = value.encode(), AttributeProto.STRING
    elif isinstance(value, Iterable) and (values := list(value)) and \
            all(isinstance(v, numbers.Real) for v in values):
        if all(isinstance(v, numbers.Integral) for v in values):
            attr.ints.extend(int(v) for v in values)
            attr.type = AttributeProto.INTS
        else:
            attr.floats.extend(float(v) for v in values)
            attr.type = AttributeProto.FLOATS
    else:
        raise TypeError(f"attribute {name}: {value!r} is not a number, a string or a non-empty list of numbers")
    return attr


def _tensor_value_info(name: str, shape: Iterable[int]) -> ValueInfoProto:
    """A float32 tensor of a fixed shape (every CG input and output)."""
    info = ValueInfoProto(name=name)
    tensor_type = info.type.tensor_type
    tensor_type.elem_type = TensorProto.FLOAT
    tensor_type.shape.SetInParent()
    for d in shape:
        tensor_type.shape.dim.add().dim_value = int(d)
    return info


def _conv(e: _Emitter, i: int, n: Node, ins: list[str]) -> None:
    cin = e.graph.in_shapes(i)[0][1]
    kh, kw = n.attrs["kernel"]
    w = e.weight(f"n{i}.weight", (n.attrs["out_channels"], cin // n.attrs["groups"], kh, kw),
                 cin // n.attrs["groups"] * kh * kw)
    inputs = [ins[0], w]
    if n.attrs["bias"]:
        inputs.append(e.const(f"n{i}.bias", np.zeros(n.attrs["out_channels"])))
    e.emit("Conv", inputs, e.name(i), kernel_shape=[kh, kw], strides=list(n.attrs["stride"]),
           pads=_onnx_pads(n.attrs["padding"]), dilations=list(n.attrs["dilation"]), group=n.attrs["groups"])


def _conv_transpose(e: _Emitter, i: int, n: Node, ins: list[str]) -> None:
    cin, groups = e.graph.in_shapes(i)[0][1], n.attrs["groups"]
    kh, kw = n.attrs["kernel"]
    w = e.weight(f"n{i}.weight", (cin, n.attrs["out_channels"] // groups, kh, kw), cin * kh * kw)
    inputs = [ins[0], w]
    if n.attrs["bias"]:
        inputs.append(e.const(f"n{i}.bias", np.zeros(n.attrs["out_channels"])))
    e.emit("ConvTranspose", inputs, e.name(i), kernel_shape=[kh, kw], strides=list(n.attrs["stride"]),
           pads=_onnx_pads(n.attrs["padding"]), dilations=list(n.attrs["dilation"]), group=groups,
           output_padding=list(n.attrs["output_padding"]))


def _prelu(e: _Emitter, i: int, n: Node, ins: list[str]) -> None:
    e.emit("PRelu", [ins[0], e.const(f"n{i}.slope", np.full((n.out_shape[1], 1, 1), 0.25))], e.name(i))


def _onnx_pads(padding) -> list[int]:
    top, left, bottom, right = padding
    return [top, left, bottom, right]


def _batchnorm(e: _Emitter, i: int, n: Node, ins: list[str]) -> None:
    c = n.out_shape[1]
    params = [e.const(f"n{i}.{p}", v) for p, v in
              (("scale", np.ones(c)), ("bias", np.zeros(c)), ("mean", np.zeros(c)), ("var", np.ones(c)))]
    e.emit("BatchNormalization", [ins[0], *params], e.name(i), epsilon=e.scalar(f"n{i}.epsilon", 1e-5))


def _pool(onnx_op: str) -> Callable[[_Emitter, int, Node, list[str]], None]:
    def emit(e: _Emitter, i: int, n: Node, ins: list[str]) -> None:
        attrs = dict(kernel_shape=list(n.attrs["kernel"]), strides=list(n.attrs["stride"]),
                     pads=_onnx_pads(n.attrs["padding"]), ceil_mode=int(n.attrs["ceil_mode"]))
        if onnx_op == "AveragePool":
            attrs["count_include_pad"] = int(n.attrs["count_include_pad"])
        e.emit(onnx_op, ins, e.name(i), **attrs)

    return emit


def _simple(onnx_op: str, **attrs) -> Callable[[_Emitter, int, Node, list[str]], None]:
    def emit(e: _Emitter, i: int, n: Node, ins: list[str]) -> None:
        e.emit(onnx_op, ins, e.name(i), **attrs)

    return emit


def _relu6(e: _Emitter, i: int, n: Node, ins: list[str]) -> None:
    e.emit("Clip", [ins[0], e.const(f"n{i}.min", 0.0), e.const(f"n{i}.max", 6.0)], e.name(i))


def _silu(e: _Emitter, i: int, n: Node, ins: list[str]) -> None:
    e.emit("Sigmoid", ins, f"{e.name(i)}.sigmoid")
    e.emit("Mul", [ins[0], f"{e.name(i)}.sigmoid"], e.name(i))


def _linear(e: _Emitter, i: int, n: Node, ins: list[str]) -> None:
    """Gemm for (N, F) features; MatMul (and Add) over the last axis of anything of higher rank."""
    fin, fout = e.graph.in_shapes(i)[0][-1], n.attrs["out_features"]
    if len(n.out_shape) == 2:
        inputs = [ins[0], e.weight(f"n{i}.weight", (fout, fin), fin)]
        if n.attrs["bias"]:
            inputs.append(e.const(f"n{i}.bias", np.zeros(fout)))
        e.emit("Gemm", inputs, e.name(i), transB=1)
        return
    product = f"{e.name(i)}.matmul" if n.attrs["bias"] else e.name(i)
    e.emit("MatMul", [ins[0], e.weight(f"n{i}.weight", (fin, fout), fin)], product)
    if n.attrs["bias"]:
        e.emit("Add", [product, e.const(f"n{i}.bias", np.zeros(fout))], e.name(i))


def _layernorm(e: _Emitter, i: int, n: Node, ins: list[str]) -> None:
    c = n.out_shape[-1]
    e.emit("LayerNormalization", [ins[0], e.const(f"n{i}.scale", np.ones(c)), e.const(f"n{i}.bias", np.zeros(c))],
           e.name(i), axis=-1, epsilon=e.scalar(f"n{i}.epsilon", 1e-5))


def _scale(e: _Emitter, i: int, n: Node, ins: list[str]) -> None:
    e.emit("Mul", [ins[0], e.const(f"n{i}.scale", np.ones(n.attrs["weight_shape"]))], e.name(i))


def _bias(e: _Emitter, i: int, n: Node, ins: list[str]) -> None:
    e.emit("Add", [ins[0], e.const(f"n{i}.bias", np.zeros(n.attrs["weight_shape"]))], e.name(i))


def _prepend(e: _Emitter, i: int, n: Node, ins: list[str]) -> None:
    """Learnt tokens, expanded to the batch, concatenated before the sequence."""
    batch, _, dim = n.out_shape
    tokens = e.weight(f"n{i}.tokens", (1, n.attrs["tokens"], dim), dim)
    shape = e.const(f"n{i}.expand", [batch, n.attrs["tokens"], dim], np.int64)
    e.emit("Expand", [tokens, shape], f"{e.name(i)}.expanded")
    e.emit("Concat", [f"{e.name(i)}.expanded", ins[0]], e.name(i), axis=1)


def _slice(e: _Emitter, i: int, n: Node, ins: list[str]) -> None:
    a = n.attrs
    bounds = [e.const(f"n{i}.{name}", [a[key]], np.int64) for name, key in
              (("starts", "start"), ("ends", "end"), ("axes", "axis"), ("steps", "step"))]
    e.emit("Slice", [ins[0], *bounds], e.name(i))


def _reshape(e: _Emitter, i: int, n: Node, ins: list[str]) -> None:
    e.emit("Reshape", [ins[0], e.const(f"n{i}.shape", n.attrs["shape"], np.int64)], e.name(i))


def _channel_slice(e: _Emitter, i: int, n: Node, ins: list[str]) -> None:
    bounds = [e.const(f"n{i}.{name}", [value], np.int64) for name, value in
              (("starts", 0), ("ends", n.attrs["channels"]), ("axes", 1))]
    e.emit("Slice", [ins[0], *bounds], e.name(i))


def _upsample(e: _Emitter, i: int, n: Node, ins: list[str]) -> None:
    s = float(n.attrs["scale"])
    mode = "nearest" if n.attrs["mode"] == "nearest" else "linear"
    e.emit("Resize", [ins[0], "", e.const(f"n{i}.scales", [1.0, 1.0, s, s])], e.name(i), mode=mode)


EMITTERS: dict[str, Callable[[_Emitter, int, Node, list[str]], None]] = {
    "conv": _conv,
    "conv_transpose": _conv_transpose,
    "batchnorm": _batchnorm,
    "prelu": _prelu,
    "relu": _simple("Relu"),
    "relu6": _relu6,
    "hardswish": _simple("HardSwish"),
    "hardsigmoid": _simple("HardSigmoid", alpha=1.0 / 6, beta=0.5),
    "sigmoid": _simple("Sigmoid"),
    "silu": _silu,
    "gelu": _simple("Gelu"),
    "identity": _simple("Identity"),
    "add": _simple("Add"),
    "mul": _simple("Mul"),
    "concat": lambda e, i, n, ins: e.emit("Concat", ins, e.name(i), axis=n.attrs.get("axis", 1)),
    "avgpool": _pool("AveragePool"),
    "maxpool": _pool("MaxPool"),
    "global_avgpool": _simple("GlobalAveragePool"),
    "linear": _linear,
    "layernorm": _layernorm,
    "scale": _scale,
    "slice": _slice,
    "matmul": _simple("MatMul"),
    "softmax": _simple("Softmax", axis=-1),
    "scalar_mul": lambda e, i, n, ins: e.emit("Mul", [ins[0], e.const(f"n{i}.value", n.attrs["value"])], e.name(i)),
    "bias": _bias,
    "prepend": _prepend,
    "flatten": _simple("Flatten", axis=1),
    "reshape": _reshape,
    "channel_slice": _channel_slice,
    "transpose": lambda e, i, n, ins: e.emit("Transpose", ins, e.name(i), perm=list(n.attrs["perm"])),
    "upsample": _upsample,
    "pixel_shuffle": lambda e, i, n, ins: e.emit("DepthToSpace", ins, e.name(i), blocksize=n.attrs["upscale"],
                                                 mode="CRD"),
}


def to_onnx(graph: ComputationGraph, seed: int = 0, name: str = "hwnas_cg", check: bool = False,
            metadata: Mapping[str, str] | None = None,
            weights: Mapping[str, np.ndarray] | None = None) -> onnx.ModelProto:
    """An ONNX model computing ``graph`` with seeded random weights (or the ``weights`` given, by the names
    this export gives them: ``n7.weight``); ``metadata`` goes to metadata_props.

    The onnx package's model, for tools that read one; the fleet ships ``to_onnx_bytes``.
    """
    import onnx

    return onnx.load_from_string(to_onnx_bytes(graph, seed, check, name, metadata, weights))


# A runtime keeps the exporter's node names ("n7", the outputs' "output"/"output0"), sometimes with a suffix of
# its own (onnxruntime's "n7_nchwc"), for the node it runs, a fused one under the name of one of its members.
_RUNTIME_NAME = re.compile(r"(?:n(\d+)|output(\d*))(?:_\w*)?")


def node_of_name(name: str, outputs: Sequence[int] = ()) -> int | None:
    """The canonical CG node a runtime's op name comes from; None for a runtime's own op (a layout reorder),
    and for an output's name when the graph's ``outputs`` are not given."""
    match = _RUNTIME_NAME.fullmatch(name)
    if match is None:
        return None
    if match.group(1) is not None:
        return int(match.group(1))
    position = int(match.group(2)) if match.group(2) else 0
    return outputs[position] if position < len(outputs) and (match.group(2) or len(outputs) == 1) else None


def to_onnx_bytes(graph: ComputationGraph, seed: int = 0, check: bool = False, name: str = "hwnas_cg",
                  metadata: Mapping[str, str] | None = None, weights: Mapping[str, np.ndarray] | None = None) -> bytes:
    """The serialised model of ``to_onnx``, written with hwnas's copy of the ONNX schema: exporting needs no
    onnx package, whose import takes over half a second of every search's start.

    ``check`` runs the ONNX checker on the structure. The tests check every op and hundreds of sampled
    architectures, so campaigns exporting thousands of models skip it (it costs ~30% of an NB-201 export).
    """
    data = _export(graph, seed, name, metadata, weights or {})
    if check:  # the structure only: copying the weights into the checker is what would cost
        import onnx

        from hwnas.controller.graph.onnx_weights import split_weights

        onnx.checker.check_model(split_weights(onnx.load_from_string(data), values=False)[1])
    return data


def _export(graph: ComputationGraph, seed: int, name: str, metadata: Mapping[str, str] | None,
            weights: Mapping[str, np.ndarray]) -> bytes:
    graph = graph.canonical()
    e = _Emitter(graph, seed, weights)
    for index, node in enumerate(graph.nodes):
        if node.op == "input":
            continue
        EMITTERS[node.op](e, index, node, [e.name(j) for j in node.inputs])
    model = e.model
    model.graph.name = name
    model.graph.input.extend(_tensor_value_info(e.name(i), graph.nodes[i].out_shape) for i in graph.input_nodes)
    model.graph.output.extend(_tensor_value_info(e.name(i), graph.nodes[i].out_shape) for i in graph.outputs)
    # every tensor's shape, declared: an agent estimates the activations of a batch from them before running it
    model.graph.value_info.extend(_tensor_value_info(e.name(i), node.out_shape) for i, node in enumerate(graph.nodes)
                                  if node.op != "input" and i not in graph.outputs)
    opset = model.opset_import.add()
    opset.domain, opset.version = "", OPSET
    model.producer_name, model.producer_version = "hwnas", "cg/1"
    model.ir_version = 9  # readable by onnxruntime >= 1.15
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()
