"""Once-for-all ResNet-50 (``ofa_resnet50``): elastic depth, expand ratio and width.

Encoding (29 variables, each an index into its choices): 5 depths {0,1,2} (the input stem, then the four
stages), 18 expand ratios {0.2, 0.25, 0.35} (one per possible bottleneck), 6 width multipliers
{0.65, 0.8, 1.0} (stem middle, stem output, the four stages). As in OFA, the stem's middle residual
conv is kept only at depth 2, stage s runs base[s] + d blocks (base 2/2/4/2), and the expand ratios of
blocks beyond the depth are masked.

Network: 3x3/2 conv + BN + ReLU; [3x3 conv + BN + ReLU with identity shortcut]; 3x3 conv + BN + ReLU;
3x3/2 max-pool; bottleneck stages (widths 256/512/1024/2048 x multiplier, strides 1/2/2/2; shortcut:
identity, or avg-pool (stride) + 1x1 conv + BN when shape changes); global pool; linear.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hwnas.controller.graph import ComputationGraph, GraphBuilder
from hwnas.controller.spaces.ofa_common import OfaSpace, make_divisible

DEPTHS = (0, 1, 2)
EXPANDS = (0.2, 0.25, 0.35)
WIDTH_MULTS = (0.65, 0.8, 1.0)
BASE_DEPTH = (2, 2, 4, 2)
STAGE_WIDTHS = (256, 512, 1024, 2048)
STRIDES = (1, 2, 2, 2)
MAX_BLOCKS = tuple(base + max(DEPTHS) for base in BASE_DEPTH)  # 4, 4, 6, 4 -> 18
N_BLOCKS = sum(MAX_BLOCKS)


class OfaResNet50(OfaSpace):
    name = "ofa-resnet50"
    description = "once-for-all ResNet-50: depth {0,1,2}, expand {0.2,0.25,0.35}, width {0.65,0.8,1.0}"

    @property
    def n_var(self) -> int:
        return 5 + N_BLOCKS + 6

    def variable_name(self, i: int) -> str:
        if i < 5:
            return "depth of the input stem" if i == 0 else f"depth of stage {i - 1}"
        if i < 5 + N_BLOCKS:
            return f"expand ratio of block {i - 5}"
        return f"width multiplier {i - 5 - N_BLOCKS}"

    def validate(self, x: Sequence[int]) -> list[int]:
        return self._check_length(x)

    def _active_blocks(self, depth: Sequence[int]) -> list[tuple[int, int]]:
        """(stage, block index in the 18) of the blocks that run."""
        active, start = [], 0
        for s, (base, most) in enumerate(zip(BASE_DEPTH, MAX_BLOCKS, strict=True)):
            active += [(s, start + j) for j in range(base + depth[s + 1])]
            start += most
        return active

    def decode(self, x: Sequence[int]) -> dict[str, list]:
        """{'d': 5 depths, 'e': 18 expand ratios (inactive as 0), 'w': 6 width indices} in OFA's terms."""
        x = self.validate(x)
        d = [DEPTHS[v] for v in x[:5]]
        active = {i for _, i in self._active_blocks(d)}
        e = [EXPANDS[x[5 + i]] if i in active else 0 for i in range(N_BLOCKS)]
        return {"d": d, "e": e, "w": list(x[5 + N_BLOCKS:])}

    def encode(self, arch: Mapping[str, Sequence]) -> list[int]:
        """Inverse of ``decode``; expand ratios of masked blocks may hold anything."""
        try:
            d = [DEPTHS.index(v) for v in arch["d"]]
            e = [EXPANDS.index(v) if v in EXPANDS else 0 for v in arch["e"]]
            w = [int(v) for v in arch["w"]]
        except (KeyError, ValueError) as exc:
            raise ValueError(f"ofa-resnet50 arch needs 'd' (values in {DEPTHS}), 'e' and 'w': {exc}") from None
        return self.canonical(d + e + w)

    def canonical(self, x: Sequence[int]) -> list[int]:
        x = self.validate(x)
        if x[0] != len(DEPTHS) - 1:
            x[0] = 0  # the stem only distinguishes "full" from "skipped"
        active = {i for _, i in self._active_blocks([DEPTHS[v] for v in x[:5]])}
        for i in range(N_BLOCKS):
            if i not in active:
                x[5 + i] = 0
        return x

    def size(self) -> int:
        stem = 2 * len(WIDTH_MULTS) ** 2
        total = stem
        for base in BASE_DEPTH:
            total *= len(WIDTH_MULTS) * sum(len(EXPANDS) ** (base + d) for d in DEPTHS)
        return total

    def to_string(self, x: Sequence[int]) -> str:
        """'stem:d2,w1.0/0.8|s0:w1.0:e0.25,0.35|...'"""
        arch = self.decode(x)
        w = [WIDTH_MULTS[i] for i in arch["w"]]
        parts = [f"stem:d{arch['d'][0]},w{w[0]}/{w[1]}"]
        blocks = self._active_blocks(arch["d"])
        for s in range(4):
            ratios = ",".join(str(arch["e"][i]) for stage, i in blocks if stage == s)
            parts.append(f"s{s}:w{w[s + 2]}:e{ratios}")
        return "|".join(parts)

    def from_string(self, text: str) -> list[int]:
        parts = text.strip().split("|")
        if len(parts) != 5 or not parts[0].startswith("stem:d"):
            raise ValueError(f"ofa-resnet50 string must be 'stem:dD,wA/B|s0:wW:eE,...|...|s3:...', got {text!r}")
        try:
            depth_text, widths_text = parts[0][len("stem:d"):].split(",w")
            stem_d = int(depth_text)
            w = [WIDTH_MULTS.index(float(v)) for v in widths_text.split("/")]
            d, e = [DEPTHS.index(stem_d)], [0] * N_BLOCKS
            start = 0
            for s, part in enumerate(parts[1:]):
                tag, width, ratios = part.split(":")
                if tag != f"s{s}":
                    raise ValueError(f"stage tag {tag!r} should be 's{s}'")
                w.append(WIDTH_MULTS.index(float(width.removeprefix("w"))))
                values = [EXPANDS.index(float(v)) for v in ratios.removeprefix("e").split(",")]
                d.append(DEPTHS.index(len(values) - BASE_DEPTH[s]))
                e[start:start + len(values)] = values
                start += MAX_BLOCKS[s]
        except ValueError as exc:
            raise ValueError(f"ofa-resnet50 string {text!r} is malformed ({exc}); depths must be in {DEPTHS}, "
                             f"expand ratios in {EXPANDS}, width multipliers in {WIDTH_MULTS}") from None
        return self.canonical(d + e + w)

    def to_graph(self, x: Sequence[int]) -> ComputationGraph:
        arch = self.decode(x)
        mult = [WIDTH_MULTS[i] for i in arch["w"]]
        stem_mid = make_divisible(make_divisible(64 * mult[0]) // 2)
        stem_out = make_divisible(64 * mult[1])
        b = GraphBuilder((self.batch_size, 3, self.resolution, self.resolution))
        h = b.conv_bn_act(b.input, stem_mid, 3, stride=2)
        if arch["d"][0] == max(DEPTHS):
            h = b.op("add", h, b.conv_bn_act(h, stem_mid, 3))
        h = b.conv_bn_act(h, stem_out, 3)
        h = b.pool("maxpool", h, 3, 2, 1)
        channels = stem_out
        blocks = self._active_blocks(arch["d"])
        for s in range(4):
            width = make_divisible(STAGE_WIDTHS[s] * mult[s + 2])
            for j, (_, i) in enumerate(blk for blk in blocks if blk[0] == s):
                stride = STRIDES[s] if j == 0 else 1
                h = self._bottleneck(b, h, channels, width, arch["e"][i], stride)
                channels = width
        b.linear(b.op("flatten", b.op("global_avgpool", h)), self.num_classes)
        return b.build()

    @staticmethod
    def _bottleneck(b: GraphBuilder, x: int, cin: int, cout: int, expand: float, stride: int) -> int:
        mid = make_divisible(round(cout * expand))
        y = b.conv_bn_act(x, mid, 1)
        y = b.conv_bn_act(y, mid, 3, stride=stride)
        y = b.op("batchnorm", b.conv(y, cout, 1))
        if stride == 1 and cin == cout:
            shortcut = x
        else:
            pooled = b.pool("avgpool", x, stride, stride, 0, ceil_mode=True) if stride > 1 else x
            shortcut = b.op("batchnorm", b.conv(pooled, cout, 1))
        return b.op("relu", b.op("add", y, shortcut))
