"""Once-for-all MobileNetV3 (``ofa_mbv3_d234_e346_k357_w1.0``) with the DyNAS-T 45-variable encoding.

Encoding: 5 stage depths, then 20 kernel sizes, then 20 expansion ratios, each an index into its choices
(depth {2,3,4}, kernel {3,5,7}, expansion {3,4,6}). Layer j of stage s is active when j < depth[s];
the kernel and expansion of inactive layers are masked (ignored, and zeroed in the canonical encoding).

Network (as OFA builds the subnet): 3x3/2 conv 16 + BN + h-swish; a 3x3 depthwise block 16->16 with a
residual; five stages of inverted-residual blocks (widths 24/40/80/112/160, strides 2/2/2/1/2, ReLU in the
first two stages and h-swish after, squeeze-excite in stages 2, 4 and 5); 1x1 conv to 960 + BN + h-swish;
global pool; 1x1 conv to 1280 + h-swish; linear classifier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hwnas.controller.graph import ComputationGraph, GraphBuilder
from hwnas.controller.spaces.ofa_common import OfaSpace, make_divisible

DEPTHS = (2, 3, 4)
KERNELS = (3, 5, 7)
EXPANDS = (3, 4, 6)
STAGES = 5
MAX_DEPTH = 4
WIDTHS = (24, 40, 80, 112, 160)
STRIDES = (2, 2, 2, 1, 2)
ACTS = ("relu", "relu", "hardswish", "hardswish", "hardswish")
SE = (False, True, False, True, True)


class OfaMobileNetV3(OfaSpace):
    name = "ofa-mbv3"
    description = "once-for-all MobileNetV3 w1.0: depth {2,3,4}, kernel {3,5,7}, expand {3,4,6} (DyNAS-T encoding)"
    accuracy_table = "ofa-mbv3-accuracy"
    label_table = "ofa-mbv3-accuracy"

    @property
    def n_var(self) -> int:
        return STAGES + 2 * STAGES * MAX_DEPTH

    def variable_name(self, i: int) -> str:
        if i < STAGES:
            return f"depth of stage {i}"
        kind = "kernel" if i < STAGES + 20 else "expand"
        layer = (i - STAGES) % 20
        return f"{kind} of stage {layer // MAX_DEPTH} layer {layer % MAX_DEPTH}"

    def validate(self, x: Sequence[int]) -> list[int]:
        return self._check_length(x)

    def decode(self, x: Sequence[int]) -> dict[str, list[int]]:
        """{'d': 5 depths, 'ks': 20 kernels, 'e': 20 expansions} in OFA's own terms (inactive as 0)."""
        x = self.validate(x)
        depth = [DEPTHS[v] for v in x[:STAGES]]
        ks, e = [], []
        for layer in range(20):
            active = layer % MAX_DEPTH < depth[layer // MAX_DEPTH]
            ks.append(KERNELS[x[STAGES + layer]] if active else 0)
            e.append(EXPANDS[x[STAGES + 20 + layer]] if active else 0)
        return {"d": depth, "ks": ks, "e": e}

    def encode(self, arch: Mapping[str, Sequence[int]]) -> list[int]:
        """Inverse of ``decode``; masked layers may hold anything."""
        try:
            d = [DEPTHS.index(v) for v in arch["d"]]
            ks = [KERNELS.index(v) if v in KERNELS else 0 for v in arch["ks"]]
            e = [EXPANDS.index(v) if v in EXPANDS else 0 for v in arch["e"]]
        except ValueError as exc:
            raise ValueError(f"ofa-mbv3 depth values must be in {DEPTHS}: {exc}") from None
        return self.canonical(d + ks + e)

    def canonical(self, x: Sequence[int]) -> list[int]:
        x = self.validate(x)
        for layer in range(20):
            if layer % MAX_DEPTH >= DEPTHS[x[layer // MAX_DEPTH]]:
                x[STAGES + layer] = x[STAGES + 20 + layer] = 0
        return x

    def _from_values(self, values: list[str]) -> list[int]:
        if not all(v.isdigit() for v in values):
            raise ValueError(f"ofa-mbv3 values must be integers, got {','.join(values)!r}")
        numbers = [int(v) for v in values]
        d, ks, e = numbers[:STAGES], numbers[STAGES:STAGES + 20], numbers[STAGES + 20:]
        for layer in range(20):
            active = layer % MAX_DEPTH < d[layer // MAX_DEPTH] if d[layer // MAX_DEPTH] in DEPTHS else True
            if active and (ks[layer] not in KERNELS or e[layer] not in EXPANDS):
                raise ValueError(f"ofa-mbv3 stage {layer // MAX_DEPTH} layer {layer % MAX_DEPTH}: kernel must be in "
                                 f"{KERNELS} and expand in {EXPANDS}, got {ks[layer]} and {e[layer]}")
        return self.encode({"d": d, "ks": ks, "e": e})

    def size(self) -> int:
        per_layer = len(KERNELS) * len(EXPANDS)
        return sum(per_layer**d for d in DEPTHS) ** STAGES

    def to_string(self, x: Sequence[int]) -> str:
        """'d2:k3e4,k5e6|d3:...' - one stage per '|', inactive layers left out."""
        arch = self.decode(x)
        stages = []
        for s, depth in enumerate(arch["d"]):
            layers = [f"k{arch['ks'][s * 4 + j]}e{arch['e'][s * 4 + j]}" for j in range(depth)]
            stages.append(f"d{depth}:" + ",".join(layers))
        return "|".join(stages)

    def from_string(self, text: str) -> list[int]:
        """The ``to_string`` form, or the 45 values of the DyNAS-T and HELP tables' columns in order: 5 depths,
        20 kernels, 20 expansions, inactive layers 0 (``2,3,2,4,3,5,7,0,0,...``)."""
        if "|" not in text and text.count(",") == STAGES + 2 * STAGES * MAX_DEPTH - 1:
            return self._from_values([v.strip() for v in text.split(",")])
        stages = text.strip().split("|")
        if len(stages) != STAGES:
            raise ValueError(f"ofa-mbv3 string must have {STAGES} '|'-separated stages, got {len(stages)}")
        d, ks, e = [], [0] * 20, [0] * 20
        for s, stage in enumerate(stages):
            head, _, body = stage.partition(":")
            if not head.startswith("d") or not head[1:].isdigit() or int(head[1:]) not in DEPTHS:
                raise ValueError(f"ofa-mbv3 stage {s} depth {head!r} must be one of {[f'd{v}' for v in DEPTHS]}")
            layers = body.split(",") if body else []
            if len(layers) != int(head[1:]):
                raise ValueError(f"ofa-mbv3 stage {s} says {head} but lists {len(layers)} layers")
            d.append(int(head[1:]))
            for j, layer in enumerate(layers):
                k, sep, ex = layer.removeprefix("k").partition("e")
                if not (layer.startswith("k") and sep and k.isdigit() and ex.isdigit()):
                    raise ValueError(f"ofa-mbv3 stage {s} layer {j} must look like k5e4, got {layer!r}")
                if int(k) not in KERNELS or int(ex) not in EXPANDS:
                    raise ValueError(f"ofa-mbv3 stage {s} layer {j}: kernel must be in {KERNELS} and expand in "
                                     f"{EXPANDS}, got {layer!r}")
                ks[s * 4 + j], e[s * 4 + j] = int(k), int(ex)
        return self.encode({"d": d, "ks": ks, "e": e})

    def to_graph(self, x: Sequence[int]) -> ComputationGraph:
        arch = self.decode(x)
        b = GraphBuilder((self.batch_size, 3, self.resolution, self.resolution))
        h = b.conv_bn_act(b.input, 16, 3, stride=2, act="hardswish")
        # First block: 3x3 depthwise (expand 1), ReLU, no SE, identity shortcut.
        y = b.conv_bn_act(h, 16, 3, groups=16, act="relu")
        h = b.op("add", h, b.op("batchnorm", b.conv(y, 16, 1)))
        channels = 16
        for s in range(STAGES):
            for j in range(arch["d"][s]):
                stride = STRIDES[s] if j == 0 else 1
                h = self._block(b, h, channels, WIDTHS[s], arch["ks"][s * 4 + j], arch["e"][s * 4 + j],
                                stride, ACTS[s], SE[s])
                channels = WIDTHS[s]
        h = b.conv_bn_act(h, 960, 1, act="hardswish")
        h = b.op("hardswish", b.conv(b.op("global_avgpool", h), 1280, 1))
        b.linear(b.op("flatten", h), self.num_classes)
        return b.build()

    @staticmethod
    def _block(b: GraphBuilder, x: int, cin: int, cout: int, kernel: int, expand: int, stride: int,
               act: str, se: bool) -> int:
        mid = make_divisible(round(cin * expand))
        y = b.conv_bn_act(x, mid, 1, act=act)
        y = b.conv_bn_act(y, mid, kernel, stride=stride, groups=mid, act=act)
        if se:
            squeeze = make_divisible(mid // 4)
            gate = b.op("relu", b.conv(b.op("global_avgpool", y), squeeze, 1, bias=True))
            gate = b.op("hardsigmoid", b.conv(gate, mid, 1, bias=True))
            y = b.op("mul", y, gate)
        y = b.op("batchnorm", b.conv(y, cout, 1))
        return b.op("add", x, y) if stride == 1 and cin == cout else y
