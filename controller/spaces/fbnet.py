"""FBNet space as HW-NAS-Bench and HELP use it: 22 searchable layers, 9 choices each (9^22 networks), CIFAR-100.

Encoding: the 22 op indices (HELP's ``op_idx_list``), string form ``7,8,1,...`` (the same indices, as the
packaged HELP latency table's ``l01``..``l22``). The network is HW-NAS-Bench's ``FBNet_Infer``
(``controller/data/help_latency/README.md``):

- Stem: conv 3x3 3->16 + BN + ReLU. Seven stages of [1, 4, 4, 4, 4, 4, 1] layers to [16, 24, 32, 64, 112, 184,
  352] channels, each stage's first layer at stride [1, 1, 2, 2, 1, 2, 1], the others at stride 1.
- ``kK_eE[_g2]``: conv 1x1 C->C*E (groups g) + BN + ReLU, [channel shuffle for g = 2], depthwise KxK stride s +
  BN + ReLU, conv 1x1 -> C_out (groups g) + BN, plus the input where stride is 1 and channels stay.
  ``skip``: identity where the shape stays, else conv 1x1 stride s + BN + ReLU. No biases.
- Head: conv 1x1 352->1504 + BN + ReLU, global average pool, linear 1504->100.
"""

from __future__ import annotations

from collections.abc import Sequence

from hwnas.controller.graph import ComputationGraph, GraphBuilder
from hwnas.controller.spaces.base import identities_last
from hwnas.controller.spaces.layer_choice import LayerChoiceSpace

OPS = ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")
SKIP = OPS.index("skip")
STAGES = (1, 4, 4, 4, 4, 4, 1)
STAGE_CHANNELS = (16, 24, 32, 64, 112, 184, 352)
STAGE_STRIDES = (1, 1, 2, 2, 1, 2, 1)
STEM_CHANNELS = 16
HEAD_CHANNELS = 1504
LAYERS = sum(STAGES)


def block(op: str) -> tuple[int, int, int]:
    """(kernel, expansion, groups) of a conv block's name, e.g. k5_e1_g2 -> (5, 1, 2)."""
    parts = op.split("_")
    return int(parts[0][1:]), int(parts[1][1:]), int(parts[2][1:]) if len(parts) > 2 else 1


class FBNet(LayerChoiceSpace):
    name = "fbnet"
    description = "FBNet (HW-NAS-Bench/HELP): 22 layers x 9 blocks (k3/k5, e1/e3/e6, groups 2, skip), CIFAR-100"
    label_table = "help-fbnet"
    ops, layers, default_classes = OPS, LAYERS, 100

    def to_string(self, x: Sequence[int]) -> str:
        return ",".join(str(v) for v in self.validate(x))

    def from_string(self, text: str) -> list[int]:
        parts = text.strip().split(",")
        if len(parts) != LAYERS or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"an fbnet architecture is {LAYERS} comma-separated op indices 0-{len(OPS) - 1} "
                             f"(e.g. 7,8,1,...), got {text!r}")
        return self.validate([int(p) for p in parts])

    def network_key(self, x: Sequence[int]) -> tuple[int, ...]:
        """A ``skip`` after a stage's first layer is an identity and can move to the stage's end."""
        return identities_last(self.validate(x), STAGES, identity=SKIP)

    def to_graph(self, x: Sequence[int]) -> ComputationGraph:
        x = self.validate(x)
        b = GraphBuilder((1, 3, self.resolution, self.resolution))
        h = b.conv_bn_act(b.input, STEM_CHANNELS, 3)
        channels, layer = STEM_CHANNELS, 0
        for n, out, first_stride in zip(STAGES, STAGE_CHANNELS, STAGE_STRIDES, strict=True):
            for k in range(n):
                stride = first_stride if k == 0 else 1
                h = self._layer(b, h, OPS[x[layer]], channels, out, stride)
                channels, layer = out, layer + 1
        h = b.conv_bn_act(h, HEAD_CHANNELS, 1)
        h = b.op("flatten", b.op("global_avgpool", h))
        return b.build(b.linear(h, self.num_classes))

    @staticmethod
    def _layer(b: GraphBuilder, h: int, op: str, c_in: int, c_out: int, stride: int) -> int:
        same = stride == 1 and c_in == c_out
        if op == "skip":
            return h if same else b.conv_bn_act(h, c_out, 1, stride)
        kernel, expand, groups = block(op)
        hidden = c_in * expand
        y = b.conv_bn_act(h, hidden, 1, groups=groups)
        if groups > 1:
            y = b.channel_shuffle(y, groups)
        y = b.conv_bn_act(y, hidden, kernel, stride, groups=hidden)
        y = b.conv_bn_act(y, c_out, 1, groups=groups, act=None)
        return b.op("add", h, y) if same else y
