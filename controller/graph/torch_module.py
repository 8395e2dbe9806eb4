"""CG -> ``torch.nn.Module``: the graph as eager PyTorch, for converters that start from torch.

LiteRT's converter (``litert-torch``) takes a torch module, so the TFLite path builds one from the CG.
Weights come from a seeded generator: like the ONNX export, the module is for timing, not accuracy.
Asymmetric padding (TF-style "same" on even kernels) is an explicit ``F.pad`` before the op, as
PyTorch's layers take one padding per side pair.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from hwnas.controller.graph.ir import ComputationGraph, Node


class UnsupportedForTorch(ValueError):
    """The CG uses an op or attribute combination PyTorch layers cannot express."""


def _symmetric(padding) -> tuple[tuple[int, int], tuple[int, int, int, int] | None]:
    """(h, w) layer padding, plus an explicit (left, right, top, bottom) pre-pad when sides differ."""
    top, left, bottom, right = padding
    if top == bottom and left == right:
        return (top, left), None
    return (0, 0), (left, right, top, bottom)


class _Single(nn.Module):
    """A one-input layer, with an explicit pre-pad where the CG's padding is asymmetric."""

    def __init__(self, layer: nn.Module, pre_pad: tuple[int, int, int, int] | None = None,
                 pad_value: float = 0.0) -> None:
        super().__init__()
        self.layer = layer
        self.pre_pad = pre_pad
        self.pad_value = pad_value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_pad is not None:
            x = F.pad(x, self.pre_pad, value=self.pad_value)
        return self.layer(x)


def _conv(n: Node, in_shapes) -> nn.Module:
    a = n.attrs
    pad, pre = _symmetric(a["padding"])
    conv = nn.Conv2d(in_shapes[0][1], a["out_channels"], tuple(a["kernel"]), tuple(a["stride"]), pad,
                     tuple(a["dilation"]), a["groups"], a["bias"])
    return _Single(conv, pre)


def _conv_transpose(n: Node, in_shapes) -> nn.Module:
    a = n.attrs
    pad, pre = _symmetric(a["padding"])
    if pre is not None:
        raise UnsupportedForTorch(f"conv_transpose with asymmetric padding {list(a['padding'])}")
    return nn.ConvTranspose2d(in_shapes[0][1], a["out_channels"], tuple(a["kernel"]), tuple(a["stride"]), pad,
                              tuple(a["output_padding"]), a["groups"], a["bias"], tuple(a["dilation"]))


def _pool(n: Node, in_shapes) -> nn.Module:
    a = n.attrs
    pad, pre = _symmetric(a["padding"])
    if n.op == "maxpool":
        return _Single(nn.MaxPool2d(tuple(a["kernel"]), tuple(a["stride"]), pad, ceil_mode=a["ceil_mode"]),
                       pre, float("-inf"))
    if pre is not None and not a["count_include_pad"]:
        raise UnsupportedForTorch(f"avgpool excluding asymmetric padding {list(a['padding'])}")
    return _Single(nn.AvgPool2d(tuple(a["kernel"]), tuple(a["stride"]), pad, ceil_mode=a["ceil_mode"],
                                count_include_pad=a["count_include_pad"]), pre)


class _Reshape(nn.Module):
    def __init__(self, shape) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(self.shape)


class _ChannelSlice(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :self.channels]


class _Slice(nn.Module):
    def __init__(self, axis: int, start: int, end: int, step: int) -> None:
        super().__init__()
        self.index = (slice(None),) * axis + (slice(start, end, step),)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[self.index]


class _Scale(nn.Module):
    """A learnt tensor the input is multiplied by (ones, as the ONNX export's)."""

    def __init__(self, shape) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(tuple(shape)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class _Bias(nn.Module):
    def __init__(self, shape) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(tuple(shape)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias


class _Prepend(nn.Module):
    """Learnt tokens before the sequence; set from the export's ``n{i}.tokens`` by ``to_torch``."""

    def __init__(self, tokens: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, tokens, dim))
        self.bias = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.weight.expand(x.shape[0], -1, -1), x], dim=1)


class _ScalarMul(nn.Module):
    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.value


class _MatMul(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x @ y


class _Permute(nn.Module):
    def __init__(self, perm) -> None:
        super().__init__()
        self.perm = tuple(perm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(self.perm)


def _upsample(n: Node, in_shapes) -> nn.Module:
    mode = "nearest" if n.attrs["mode"] == "nearest" else "bilinear"
    return nn.Upsample(scale_factor=n.attrs["scale"], mode=mode)


class _Add(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y


class _Mul(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x * y


class _Concat(nn.Module):
    def __init__(self, axis: int = 1) -> None:
        super().__init__()
        self.axis = axis

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=self.axis)


# CG op -> a layer taking the node's inputs in order.
_LAYERS: dict[str, Callable[[Node, list], nn.Module]] = {
    "conv": _conv,
    "conv_transpose": _conv_transpose,
    "batchnorm": lambda n, s: nn.BatchNorm2d(s[0][1]),
    "prelu": lambda n, s: nn.PReLU(s[0][1]),
    "relu": lambda n, s: nn.ReLU(),
    "relu6": lambda n, s: nn.ReLU6(),
    "hardswish": lambda n, s: nn.Hardswish(),
    "hardsigmoid": lambda n, s: nn.Hardsigmoid(),
    "sigmoid": lambda n, s: nn.Sigmoid(),
    "silu": lambda n, s: nn.SiLU(),
    "gelu": lambda n, s: nn.GELU(),
    "identity": lambda n, s: nn.Identity(),
    "avgpool": _pool,
    "maxpool": _pool,
    "global_avgpool": lambda n, s: nn.AdaptiveAvgPool2d(1),
    "linear": lambda n, s: nn.Linear(s[0][-1], n.attrs["out_features"], n.attrs["bias"]),
    "layernorm": lambda n, s: nn.LayerNorm(s[0][-1]),
    "scale": lambda n, s: _Scale(n.attrs["weight_shape"]),
    "slice": lambda n, s: _Slice(n.attrs["axis"], n.attrs["start"], n.attrs["end"], n.attrs["step"]),
    "flatten": lambda n, s: nn.Flatten(1),
    "reshape": lambda n, s: _Reshape(n.attrs["shape"]),
    "transpose": lambda n, s: _Permute(n.attrs["perm"]),
    "channel_slice": lambda n, s: _ChannelSlice(n.attrs["channels"]),
    "upsample": _upsample,
    "pixel_shuffle": lambda n, s: nn.PixelShuffle(n.attrs["upscale"]),
    "add": lambda n, s: _Add(),
    "mul": lambda n, s: _Mul(),
    "concat": lambda n, s: _Concat(n.attrs.get("axis", 1)),
    "matmul": lambda n, s: _MatMul(),
    "softmax": lambda n, s: nn.Softmax(-1),
    "scalar_mul": lambda n, s: _ScalarMul(n.attrs["value"]),
    "bias": lambda n, s: _Bias(n.attrs["weight_shape"]),
    "prepend": lambda n, s: _Prepend(n.attrs["tokens"], s[0][-1]),
}


class GraphModule(nn.Module):
    """Runs the CG's nodes in their (topological) order; its input tensors in the graph's input order, one
    output or a tuple."""

    def __init__(self, graph: ComputationGraph) -> None:
        super().__init__()
        self.layers = nn.ModuleDict()
        self.plan: list[tuple[int, tuple[int, ...]]] = []
        for index, node in enumerate(graph.nodes):
            if node.op == "input":
                continue
            if node.op not in _LAYERS:
                raise UnsupportedForTorch(f"op {node.op!r} has no PyTorch layer")
            self.layers[str(index)] = _LAYERS[node.op](node, graph.in_shapes(index))
            self.plan.append((index, node.inputs))
        self.outputs = tuple(graph.outputs)
        self.inputs = graph.input_nodes

    def forward(self, *xs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        values: dict[int, torch.Tensor] = dict(zip(self.inputs, xs, strict=True))
        for index, inputs in self.plan:
            values[index] = self.layers[str(index)](*(values[i] for i in inputs))
        outs = tuple(values[i] for i in self.outputs)
        return outs[0] if len(outs) == 1 else outs


def to_torch(graph: ComputationGraph, seed: int = 0) -> GraphModule:
    """An eval-mode module computing ``graph`` with the weights of its ONNX export with ``seed``
    (``onnx_export.to_onnx_bytes``): every format the controller sends then computes the same function, and
    a TFLite model's outputs can be checked against onnxruntime on the ONNX (``fleet.output_check``)."""
    from hwnas.controller.graph.onnx_export import to_onnx_bytes
    from hwnas.protos.onnx_format.onnx_ml_pb2 import ModelProto

    graph = graph.canonical()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the layers' own initialisation, every value of which is overwritten below
        module = GraphModule(graph)
    exported = ModelProto.FromString(to_onnx_bytes(graph, seed))
    weights = {t.name: t for t in exported.graph.initializer}
    with torch.no_grad():
        for key, layer in module.layers.items():
            layer = layer.layer if isinstance(layer, _Single) else layer
            if not isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, _Prepend)):
                continue  # batchnorm, layernorm, scale, bias (identities) and PReLU (0.25) start as the export's
            tensor = weights[f"n{key}.tokens" if isinstance(layer, _Prepend) else f"n{key}.weight"]
            value = torch.frombuffer(bytearray(tensor.raw_data), dtype=torch.float32).reshape(tuple(tensor.dims))
            if isinstance(layer, nn.Linear) and len(graph.nodes[int(key)].out_shape) > 2:
                value = value.t()  # exported as MatMul's (in, out) rather than Gemm's (out, in)
            layer.weight.copy_(value)
            if layer.bias is not None:
                layer.bias.zero_()
    return module.eval()
