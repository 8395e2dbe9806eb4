"""Building a CG op by op (``GraphBuilder``): what spaces, the corpus, the importer and AutoGO write networks
with. Each method adds one node, whose output shape the op's rule infers at once, so a shape error names the
node where it happens; ``build`` prunes what leads to no output and freezes the graph."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from hwnas.controller.graph.ir import ComputationGraph, Node, ancestors, prune
from hwnas.controller.graph.ops import Shape, op_spec


def _plain(value: Any) -> Any:
    """Attribute values as plain Python: numpy scalars unwrapped, sequences as tuples."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    return value


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, (int, np.integer)):
        return (int(value), int(value))
    first, second = value
    return (int(first), int(second))


def _padding(value: int | Sequence[int] | None, kernel: tuple[int, int], dilation: tuple[int, int]) -> tuple[int, ...]:
    """None means 'same' for odd kernels at stride 1; ints are symmetric; 4-tuples are (t, l, b, r)."""
    if value is None:
        return (dilation[0] * (kernel[0] - 1) // 2, dilation[1] * (kernel[1] - 1) // 2) * 2
    if isinstance(value, (int, np.integer)):
        return (int(value),) * 4
    if len(value) == 2:
        return (value[0], value[1], value[0], value[1])
    return tuple(int(v) for v in value)


class GraphBuilder:
    """Builds a CG op by op; each method returns the new node's index."""

    def __init__(self, input_shape: Sequence[int]) -> None:
        self._nodes: list[Node] = []
        self._inputs = [self.add_node("input", (), shape=tuple(int(d) for d in input_shape))]

    @property
    def input(self) -> int:
        return 0

    def add_input(self, shape: Sequence[int]) -> int:
        """Another input of the network (an encoder-decoder's target sequence). A network of several inputs
        numbers them by ``position`` in the order it takes them; the first is the builder's ``input``."""
        if len(self._inputs) == 1:
            self.set_attrs(self._inputs[0], position=0)
        self._inputs.append(self.add_node("input", (), shape=tuple(int(d) for d in shape), position=len(self._inputs)))
        return self._inputs[-1]

    def shape(self, index: int) -> Shape:
        return self._nodes[index].out_shape

    def node(self, index: int) -> Node:
        return self._nodes[index]

    def add_node(self, op: str, inputs: Sequence[int], **attrs: Any) -> int:
        """Append an op with raw attributes (importers use this); its output shape is inferred."""
        spec = op_spec(op)
        attrs = {key: _plain(value) for key, value in attrs.items()}
        shapes = [self._nodes[i].out_shape for i in inputs]
        out = tuple(int(d) for d in spec.infer(shapes, attrs))
        self._nodes.append(Node(op, tuple(int(i) for i in inputs), out, attrs))
        return len(self._nodes) - 1

    def conv(self, x: int, out_channels: int, kernel: int | Sequence[int], stride: int | Sequence[int] = 1,
             padding: int | Sequence[int] | None = None, dilation: int | Sequence[int] = 1, groups: int = 1,
             bias: bool = False) -> int:
        k, d = _pair(kernel), _pair(dilation)
        return self.add_node("conv", [x], out_channels=out_channels, kernel=k, stride=_pair(stride),
                         padding=_padding(padding, k, d), dilation=d, groups=groups, bias=bias)

    def conv_transpose(self, x: int, out_channels: int, kernel: int | Sequence[int], stride: int | Sequence[int] = 1,
                       padding: int | Sequence[int] = 0, output_padding: int | Sequence[int] = 0,
                       groups: int = 1, bias: bool = True) -> int:
        k = _pair(kernel)
        return self.add_node("conv_transpose", [x], out_channels=out_channels, kernel=k, stride=_pair(stride),
                             padding=_padding(padding, k, (1, 1)), dilation=(1, 1), groups=groups, bias=bias,
                             output_padding=_pair(output_padding))

    def op(self, op: str, *inputs: int, **attrs: Any) -> int:
        """Any attribute-free op (activations, batchnorm, add, mul, concat, flatten, identity, pools...)."""
        return self.add_node(op, inputs, **attrs)

    def pool(self, kind: str, x: int, kernel: int | Sequence[int], stride: int | Sequence[int] | None = None,
             padding: int | Sequence[int] = 0, ceil_mode: bool = False, count_include_pad: bool = True) -> int:
        k = _pair(kernel)
        attrs: dict[str, Any] = dict(kernel=k, stride=_pair(stride if stride is not None else kernel),
                                     padding=_padding(padding, k, (1, 1)), ceil_mode=ceil_mode)
        if kind == "avgpool":
            attrs["count_include_pad"] = count_include_pad
        return self.add_node(kind, [x], **attrs)

    def linear(self, x: int, out_features: int, bias: bool = True) -> int:
        return self.add_node("linear", [x], out_features=out_features, bias=bias)

    def reshape(self, x: int, shape: Sequence[int]) -> int:
        """A reshape to (N, everything else) is a flatten and is recorded as one (one op, one canonical form)."""
        source = self.shape(x)
        if len(shape) == 2 and shape[0] == source[0] and shape[1] == math.prod(source[1:]):
            return self.add_node("flatten", [x])
        return self.add_node("reshape", [x], shape=tuple(shape))

    def upsample(self, x: int, scale: int, mode: str = "nearest") -> int:
        if mode not in ("nearest", "bilinear"):
            raise ValueError(f"upsample mode must be 'nearest' or 'bilinear', got {mode!r}")
        return self.add_node("upsample", [x], scale=scale, mode=mode)

    def pixel_shuffle(self, x: int, upscale: int) -> int:
        return self.add_node("pixel_shuffle", [x], upscale=upscale)

    def slice_channels(self, x: int, channels: int) -> int:
        """The first ``channels`` channels of ``x``."""
        return self.add_node("channel_slice", [x], channels=channels)

    def channel_shuffle(self, x: int, groups: int) -> int:
        """ShuffleNet's shuffle: reshape (N, g, C/g, H, W), swap the two channel axes, reshape back."""
        n, c, h, w = self.shape(x)
        if c % groups:
            raise ValueError(f"channel shuffle: {c} channels do not split into {groups} groups")
        y = self.reshape(x, (n, groups, c // groups, h, w))
        return self.reshape(self.add_node("transpose", [y], perm=(0, 2, 1, 3, 4)), (n, c, h, w))

    def conv_bn_act(self, x: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1,
                    act: str | None = "relu") -> int:
        y = self.op("batchnorm", self.conv(x, out_channels, kernel, stride, groups=groups))
        return self.op(act, y) if act else y

    def set_attrs(self, index: int, **attrs: Any) -> None:
        """Change attributes that do not affect the output shape (an importer folding a bias add)."""
        node = self._nodes[index]
        self._nodes[index] = Node(node.op, node.inputs, node.out_shape, {**node.attrs, **attrs})

    def build(self, *outputs: int) -> ComputationGraph:
        """The finished graph; nodes that lead to no output are pruned."""
        return prune(self._nodes, outputs or (len(self._nodes) - 1,))

    def build_with_positions(self, *outputs: int) -> tuple[ComputationGraph, dict[int, int]]:
        """``build``, and where each kept node of this builder lands in the graph's canonical form."""
        outputs = outputs or (len(self._nodes) - 1,)
        graph = prune(self._nodes, outputs)
        kept = sorted(ancestors(self._nodes, outputs))
        positions = graph.canonical_positions()
        return graph, {old: positions[new] for new, old in enumerate(kept)}
