"""NAS-Bench-Macro (Su et al., CVPR 2021): 8 searchable MobileNetV2-style layers, 3 choices each (6,561 keys).

Encoding: the 8 layer choices, each 0 ``id``, 1 ``ir_3x3_t3`` or 2 ``ir_5x5_t6`` (the benchmark's key
``02012100`` is the string form). The network is ``train/model.py`` of the benchmark, rebuilt exactly
(``controller/data/nas_bench_macro/README.md``): params and MACs equal the table's for all 6,561 keys.

- Stem: conv 3x3 3->32 + BN + ReLU. Stages of 2, 3, 3 layers; each stage's first layer has stride 2 and
  doubles the channels (32->64->128->256), the others keep them.
- ``id`` is an identity where the shape stays, and a 1x1 stride-2 conv + BN (no activation) at a stage's
  first layer; ``ir_k_t`` is conv 1x1 to round(in*t) + BN + ReLU, depthwise kxk + BN + ReLU, conv 1x1 + BN,
  plus the input where stride is 1 and channels stay.
- Head: conv 1x1 256->1280 + BN + ReLU, global average pool, linear 1280->10.

An identity inside a stage can move to the stage's end without changing the network; the benchmark trained
only that form (``trained_arch``) and so does ``network_key``: keys that differ by such a move are one network.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

from hwnas.controller.graph import ComputationGraph, GraphBuilder
from hwnas.controller.spaces.base import identities_last
from hwnas.controller.spaces.layer_choice import LayerChoiceSpace

OPS = ("id", "ir_3x3_t3", "ir_5x5_t6")
BLOCKS = {1: (3, 3), 2: (5, 6)}  # choice -> (depthwise kernel, expansion)
STAGES = (2, 3, 3)  # layers per stage
STAGE_CHANNELS = (64, 128, 256)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
LAYERS = sum(STAGES)


def _stage_of_layer() -> list[tuple[int, bool]]:
    """(stage, first layer of its stage) for each of the 8 layers."""
    return [(s, k == 0) for s, n in enumerate(STAGES) for k in range(n)]


class NasBenchMacro(LayerChoiceSpace):
    name = "nas-bench-macro"
    description = "NAS-Bench-Macro: 8 layers of id / MBv2 k3 t3 / MBv2 k5 t6, CIFAR-10 (6,561 keys)"
    accuracy_table = "nas-bench-macro"
    label_table = "nas-bench-macro"
    ops, layers, default_classes = OPS, LAYERS, 10

    def to_string(self, x: Sequence[int]) -> str:
        return "".join(str(v) for v in self.validate(x))

    def from_string(self, text: str) -> list[int]:
        text = text.strip()
        if len(text) != LAYERS or any(c not in "012" for c in text):
            raise ValueError(f"a nas-bench-macro key is {LAYERS} digits 0-2 (e.g. 02012100), got {text!r}")
        return [int(c) for c in text]

    def enumerate(self) -> Iterator[list[int]]:
        for x in itertools.product(range(len(OPS)), repeat=LAYERS):
            yield list(x)

    def network_key(self, x: Sequence[int]) -> tuple[int, ...]:
        """The benchmark's ``get_real_arch``: identities after a stage's first layer moved to the stage's end."""
        return identities_last(self.validate(x), STAGES, identity=0)

    def to_graph(self, x: Sequence[int]) -> ComputationGraph:
        x = self.validate(x)
        b = GraphBuilder((1, 3, self.resolution, self.resolution))
        h = b.conv_bn_act(b.input, STEM_CHANNELS, 3)
        channels = STEM_CHANNELS
        for choice, (stage, first) in zip(x, _stage_of_layer(), strict=True):
            out, stride = STAGE_CHANNELS[stage], 2 if first else 1
            if choice == 0:
                if stride != 1 or channels != out:  # the benchmark's "id" where the shape changes
                    h = b.conv_bn_act(h, out, 1, stride, act=None)
            else:
                kernel, expand = BLOCKS[choice]
                y = b.conv_bn_act(h, round(channels * expand), 1)
                y = b.conv_bn_act(y, round(channels * expand), kernel, stride, groups=round(channels * expand))
                y = b.conv_bn_act(y, out, 1, act=None)
                h = b.op("add", h, y) if stride == 1 and channels == out else y
            channels = out
        h = b.conv_bn_act(h, HEAD_CHANNELS, 1)
        h = b.op("flatten", b.op("global_avgpool", h))
        return b.build(b.linear(h, self.num_classes))
