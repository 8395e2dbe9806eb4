"""ONNX -> a PyTorch module, on the agent, for the ``torch`` backend.

Models reach agents as ONNX bytes (never pickles), so a PyTorch agent rebuilds the network from the ONNX
graph: one PyTorch function per ONNX op, run in the graph's (topological) order, weights from the
initialisers. It covers the ops the controller's CG export emits, which is every model hwnas sends
(imported networks are re-exported from their CG); any other op is refused by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

from hwnas.device_agent.backends.base import InputSpec
from hwnas.device_agent.errors import InvalidInput

_DTYPES = {1: "float32", 10: "float16", 11: "float64", 7: "int64", 6: "int32"}  # ONNX TensorProto -> numpy
Args = list[torch.Tensor | None]
Attrs = dict[str, Any]


def _pads(attrs: Attrs) -> tuple[tuple[int, int], tuple[int, int, int, int] | None]:
    """ONNX pads (top, left, bottom, right) -> (symmetric (h, w), or an explicit F.pad (l, r, t, b))."""
    top, left, bottom, right = attrs.get("pads", (0, 0, 0, 0))
    if top == bottom and left == right:
        return (top, left), None
    return (0, 0), (left, right, top, bottom)


def _padded(x: torch.Tensor, attrs: Attrs, value: float = 0.0) -> tuple[torch.Tensor, tuple[int, int]]:
    pad, explicit = _pads(attrs)
    return (F.pad(x, explicit, value=value) if explicit else x), pad


def _conv(a: Args, attrs: Attrs) -> torch.Tensor:
    x, pad = _padded(a[0], attrs)
    return F.conv2d(x, a[1], a[2] if len(a) > 2 else None, tuple(attrs.get("strides", (1, 1))), pad,
                    tuple(attrs.get("dilations", (1, 1))), attrs.get("group", 1))


def _conv_transpose(a: Args, attrs: Attrs) -> torch.Tensor:
    pad, explicit = _pads(attrs)
    if explicit:
        raise InvalidInput(f"ConvTranspose with asymmetric pads {attrs['pads']} is not supported by the torch backend")
    return F.conv_transpose2d(a[0], a[1], a[2] if len(a) > 2 else None, tuple(attrs.get("strides", (1, 1))), pad,
                              tuple(attrs.get("output_padding", (0, 0))), attrs.get("group", 1),
                              tuple(attrs.get("dilations", (1, 1))))


def _avg_pool(a: Args, attrs: Attrs) -> torch.Tensor:
    include = bool(attrs.get("count_include_pad", 0))
    pad, explicit = _pads(attrs)
    if explicit and not include:
        raise InvalidInput("AveragePool excluding asymmetric pads is not supported by the torch backend")
    x = F.pad(a[0], explicit) if explicit else a[0]
    return F.avg_pool2d(x, tuple(attrs["kernel_shape"]), tuple(attrs.get("strides", (1, 1))), pad,
                        bool(attrs.get("ceil_mode", 0)), include)


def _max_pool(a: Args, attrs: Attrs) -> torch.Tensor:
    x, pad = _padded(a[0], attrs, float("-inf"))
    return F.max_pool2d(x, tuple(attrs["kernel_shape"]), tuple(attrs.get("strides", (1, 1))), pad,
                        ceil_mode=bool(attrs.get("ceil_mode", 0)))


def _gemm(a: Args, attrs: Attrs) -> torch.Tensor:
    weight = a[1] if attrs.get("transB", 0) else a[1].t()
    x = a[0].t() if attrs.get("transA", 0) else a[0]
    return F.linear(x * attrs.get("alpha", 1.0), weight, None if len(a) < 3 else a[2] * attrs.get("beta", 1.0))


def _resize(a: Args, attrs: Attrs) -> torch.Tensor:
    scales = a[2].tolist() if len(a) > 2 and a[2] is not None and a[2].numel() else None
    if scales is None or scales[:2] != [1.0, 1.0]:
        raise InvalidInput("Resize is supported with spatial scales only")
    mode = {"nearest": "nearest", "linear": "bilinear"}[attrs.get("mode", "nearest")]
    return F.interpolate(a[0], scale_factor=tuple(scales[2:]), mode=mode)


def _clip(a: Args, attrs: Attrs) -> torch.Tensor:
    low = a[1] if len(a) > 1 and a[1] is not None else None
    high = a[2] if len(a) > 2 and a[2] is not None else None
    return torch.clamp(a[0], low, high)


def _slice(a: Args, attrs: Attrs) -> torch.Tensor:
    x = a[0]
    starts, ends = a[1].tolist(), a[2].tolist()
    axes = a[3].tolist() if len(a) > 3 and a[3] is not None else list(range(len(starts)))
    steps = a[4].tolist() if len(a) > 4 and a[4] is not None else [1] * len(starts)
    index = [slice(None)] * x.dim()
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        index[axis] = slice(start, end, step)
    return x[tuple(index)]


def _reshape(a: Args, attrs: Attrs) -> torch.Tensor:
    x = a[0]
    shape = [x.shape[k] if d == 0 else d for k, d in enumerate(a[1].tolist())]
    return x.reshape(shape)


OPS: dict[str, Callable[[Args, Attrs], torch.Tensor]] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "BatchNormalization": lambda a, t: F.batch_norm(a[0], a[3], a[4], a[1], a[2], False, 0.0, t.get("epsilon", 1e-5)),
    "PRelu": lambda a, t: torch.where(a[0] >= 0, a[0], a[0] * a[1]),
    "Relu": lambda a, t: F.relu(a[0]),
    "Clip": _clip,
    "HardSwish": lambda a, t: F.hardswish(a[0]),
    "HardSigmoid": lambda a, t: torch.clamp(a[0] * t.get("alpha", 0.2) + t.get("beta", 0.5), 0.0, 1.0),
    "Sigmoid": lambda a, t: torch.sigmoid(a[0]),
    "Gelu": lambda a, t: F.gelu(a[0]),
    "Identity": lambda a, t: a[0],
    "Add": lambda a, t: a[0] + a[1],
    "Mul": lambda a, t: a[0] * a[1],
    "Concat": lambda a, t: torch.cat(a, dim=t.get("axis", 1)),
    "AveragePool": _avg_pool,
    "MaxPool": _max_pool,
    "GlobalAveragePool": lambda a, t: a[0].mean(dim=(2, 3), keepdim=True),
    "Gemm": _gemm,
    "MatMul": lambda a, t: torch.matmul(a[0], a[1]),
    "Softmax": lambda a, t: torch.softmax(a[0], t.get("axis", -1)),
    "Expand": lambda a, t: a[0] * torch.ones(a[1].tolist(), dtype=a[0].dtype),  # ONNX's broadcast, not torch's
    "LayerNormalization": lambda a, t: F.layer_norm(a[0], a[0].shape[t.get("axis", -1) % a[0].dim():],
                                                    a[1] if len(a) > 1 else None, a[2] if len(a) > 2 else None,
                                                    t.get("epsilon", 1e-5)),
    "Flatten": lambda a, t: torch.flatten(a[0], t.get("axis", 1)),
    "Reshape": _reshape,
    "Slice": _slice,
    "Transpose": lambda a, t: a[0].permute(*(t.get("perm") or reversed(range(a[0].dim())))),
    "Resize": _resize,
    "DepthToSpace": lambda a, t: F.pixel_shuffle(a[0], t["blocksize"]),
}


class OnnxModule(torch.nn.Module):
    """Runs an ONNX graph's nodes in order; initialisers are buffers, so ``.to(device)`` moves them."""

    def __init__(self, model: onnx.ModelProto) -> None:
        super().__init__()
        graph = model.graph
        unsupported = sorted({n.op_type for n in graph.node} - set(OPS))
        if unsupported:
            raise InvalidInput(f"the torch backend cannot run ONNX op(s) {unsupported}; supported: {sorted(OPS)}")
        self._names: dict[str, str] = {}
        for k, init in enumerate(graph.initializer):
            buffer = f"w{k}"
            self.register_buffer(buffer, torch.from_numpy(numpy_helper.to_array(init).copy()))
            self._names[init.name] = buffer
        weights = set(self._names)
        graph_inputs = [i for i in graph.input if i.name not in weights]
        self.input_names = [i.name for i in graph_inputs]
        self.input_specs = [_input_spec(i) for i in graph_inputs]
        self.output_names = [o.name for o in graph.output]
        self._nodes = [(n.op_type, list(n.input), n.output[0],
                        {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}) for n in graph.node]
        self._node_names = [n.name or n.output[0] for n in graph.node]
        for _, _, _, attrs in self._nodes:  # ONNX gives strings as bytes
            for key, value in attrs.items():
                if isinstance(value, bytes):
                    attrs[key] = value.decode()

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        values: dict[str, torch.Tensor | None] = {"": None, **dict(zip(self.input_names, inputs, strict=True))}
        for name, buffer in self._names.items():
            values[name] = getattr(self, buffer)
        for op_type, ins, out, attrs in self._nodes:
            values[out] = OPS[op_type]([values[i] for i in ins], attrs)
        outs = tuple(values[name] for name in self.output_names)
        return outs[0] if len(outs) == 1 else outs

    def op_times(self, inputs: list[torch.Tensor], runs: int) -> list[tuple[str, str, float]]:
        """Each ONNX node's CPU time per inference over ``runs`` runs, from ``torch.profiler`` with one label
        per node (a node's label spans the aten ops it calls). The labels live in this loop only, so the timed
        ``forward`` pays nothing for them."""
        from torch.profiler import ProfilerActivity, profile, record_function

        with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(runs):
                values: dict[str, torch.Tensor | None] = {"": None, **dict(zip(self.input_names, inputs,
                                                                               strict=True))}
                for name, buffer in self._names.items():
                    values[name] = getattr(self, buffer)
                for label, (op_type, ins, out, attrs) in zip(self._node_names, self._nodes, strict=True):
                    with record_function(label):
                        values[out] = OPS[op_type]([values[i] for i in ins], attrs)
        labels = set(self._node_names)
        micros = {event.key: event.cpu_time_total for event in prof.key_averages() if event.key in labels}
        return [(label, op_type, micros.get(label, 0.0) / runs / 1e3)
                for label, (op_type, _, _, _) in zip(self._node_names, self._nodes, strict=True)]


def _input_spec(value: onnx.ValueInfoProto) -> InputSpec:
    tensor = value.type.tensor_type
    if tensor.elem_type not in _DTYPES:
        raise InvalidInput(f"input {value.name!r} has an unsupported element type {tensor.elem_type}")
    dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor.shape.dim)
    return InputSpec(value.name, dims, _DTYPES[tensor.elem_type])


def load_onnx_module(data: bytes) -> OnnxModule:
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise InvalidInput(f"model bytes are not an ONNX model: {exc}") from exc
    if not model.graph.node:
        raise InvalidInput("model bytes are not an ONNX model: the graph has no nodes")
    return OnnxModule(model).eval()
