"""HAT's elastic encoder-decoder transformer (Wang et al. 2020), the machine-translation space LINAS searches
(LINAS §D.4: WMT'14 En-De, 40 design variables).

Encoding (40 integers): the encoder's and the decoder's embedding width {512, 640}; the encoder's layer count
(6, HAT's and LINAS's constant: one option); the decoder's layer count 1-6; per encoder layer its feed-forward
width {1024, 2048, 3072} and attention heads {4, 8}; per decoder layer its feed-forward width, self-attention
heads, encoder-decoder attention heads, and HAT's *arbitrary encoder-decoder attention*: how many of the last
encoder layers it attends to {1, 2, 3} (their outputs concatenated along the tokens). Variables of decoder
layers beyond the depth are masked (zeroed in the canonical encoding). 4 x 6^6 x (36 + ... + 36^6) networks.

Network, as the super-network runs a sub-network: two inputs, the source and the target token embeddings at
the largest width, (batch, source tokens, 640) and (batch, target tokens, 640); each side takes its first
``embedding`` features. Encoder layers are the ``transformer`` space's post-norm layers. A decoder layer runs
self-attention, then attention whose queries are its tokens and whose keys and values are projected from the
chosen encoder outputs (from the encoder's width to the decoder's), then a GELU feed-forward, each added and
LayerNorm'd. Left out, as in the ``transformer`` space: the token lookups and the output projection to the
vocabulary (gathers and one matmul whose cost the decoder's width sets), and the decoder's causal mask (an
added constant that masks values, not compute). The CG is one decoder pass over the target tokens.

No accuracy table exists for this space either (HAT's BLEU scores come from a trained super-network this
project does not ship): searches take a lab's ``--accuracy module:function`` or a size proxy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hwnas.controller.graph import ComputationGraph, GraphBuilder
from hwnas.controller.spaces.base import SearchSpace
from hwnas.controller.spaces.transformer import EMBEDDINGS, FFNS, HEADS, attention, post_norm

ENCODER_LAYERS = 6
MAX_DECODER_LAYERS = 6
ARBITRARY = (1, 2, 3)  # last encoder layers a decoder layer attends to
L = MAX_DECODER_LAYERS
# Offsets of the per-layer blocks in the encoding.
ENC_FFN, ENC_HEADS = 4, 4 + ENCODER_LAYERS
DEC_FFN, DEC_SELF, DEC_CROSS, DEC_ARBITRARY = (4 + 2 * ENCODER_LAYERS + k * L for k in range(4))
N_VAR = DEC_ARBITRARY + L  # 40
_STRING = re.compile(r"enc(?P<ee>\d+):h(?P<eh>[\d,]+):f(?P<ef>[\d,]+)\|dec(?P<de>\d+):h(?P<dh>[\d,]+):"
                     r"x(?P<dx>[\d,]+):f(?P<df>[\d,]+):a(?P<da>[\d,]+)")


class HatTransformer(SearchSpace):
    name = "hat"
    description = ("HAT's elastic encoder-decoder transformer (LINAS's WMT'14 space): embeddings {512, 640}, 6 encoder "
                   "layers, 1-6 decoder layers, per layer heads {4, 8} and feed-forward {1024, 2048, 3072}, "
                   "arbitrary encoder-decoder attention {1, 2, 3} (40 variables)")
    predictor_features = "one-hot+cg"

    def __init__(self, sequence: int = 30, target: int = 0, batch_size: int = 1) -> None:
        target = target or sequence
        if not (1 <= sequence <= 4096 and 1 <= target <= 4096) or batch_size < 1:
            raise ValueError(f"sequence and target must be 1-4096 tokens and batch_size >= 1, got {sequence}, "
                             f"{target} and {batch_size}")
        self.sequence, self.target, self.batch_size = sequence, target, batch_size

    @property
    def n_var(self) -> int:
        return N_VAR

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        high = [len(EMBEDDINGS) - 1, len(EMBEDDINGS) - 1, 0, MAX_DECODER_LAYERS - 1]
        high += [len(FFNS) - 1] * ENCODER_LAYERS + [len(HEADS) - 1] * ENCODER_LAYERS
        high += [len(FFNS) - 1] * L + [len(HEADS) - 1] * L + [len(HEADS) - 1] * L + [len(ARBITRARY) - 1] * L
        return np.zeros(N_VAR, dtype=int), np.array(high, dtype=int)

    def variable_name(self, i: int) -> str:
        if i < 4:
            return ("encoder embedding", "decoder embedding", "encoder layers", "decoder layers")[i]
        for start, what, count in ((ENC_FFN, "feed-forward width of encoder layer", ENCODER_LAYERS),
                                   (ENC_HEADS, "heads of encoder layer", ENCODER_LAYERS),
                                   (DEC_FFN, "feed-forward width of decoder layer", L),
                                   (DEC_SELF, "self-attention heads of decoder layer", L),
                                   (DEC_CROSS, "encoder-decoder heads of decoder layer", L),
                                   (DEC_ARBITRARY, "encoder layers attended by decoder layer", L)):
            if start <= i < start + count:
                return f"{what} {i - start}"
        raise IndexError(i)

    def validate(self, x: Sequence[int]) -> list[int]:
        return self._check_length(x)

    def canonical(self, x: Sequence[int]) -> list[int]:
        x = self.validate(x)
        for layer in range(x[3] + 1, MAX_DECODER_LAYERS):
            for start in (DEC_FFN, DEC_SELF, DEC_CROSS, DEC_ARBITRARY):
                x[start + layer] = 0
        return x

    def decode(self, x: Sequence[int]) -> dict[str, Any]:
        """Widths, per-layer heads and feed-forward widths of both sides; the decoder's active layers only."""
        x = self.canonical(x)
        depth = x[3] + 1

        def values(start: int, count: int, options: Sequence[int]) -> list[int]:
            return [options[v] for v in x[start:start + count]]

        return {"encoder_embedding": EMBEDDINGS[x[0]], "decoder_embedding": EMBEDDINGS[x[1]],
                "encoder_layers": ENCODER_LAYERS, "decoder_layers": depth,
                "encoder_heads": values(ENC_HEADS, ENCODER_LAYERS, HEADS),
                "encoder_ffn": values(ENC_FFN, ENCODER_LAYERS, FFNS),
                "decoder_heads": values(DEC_SELF, depth, HEADS), "cross_heads": values(DEC_CROSS, depth, HEADS),
                "decoder_ffn": values(DEC_FFN, depth, FFNS), "arbitrary": values(DEC_ARBITRARY, depth, ARBITRARY)}

    def encode(self, arch: Mapping[str, Any]) -> list[int]:
        try:
            depth = int(arch["decoder_layers"])
            if not 1 <= depth <= MAX_DECODER_LAYERS:
                raise ValueError(f"decoder_layers must be 1-{MAX_DECODER_LAYERS}")
            x = [EMBEDDINGS.index(int(arch["encoder_embedding"])), EMBEDDINGS.index(int(arch["decoder_embedding"])),
                 0, depth - 1]
            for key, count, options in (("encoder_ffn", ENCODER_LAYERS, FFNS), ("encoder_heads", ENCODER_LAYERS, HEADS),
                                        ("decoder_ffn", depth, FFNS), ("decoder_heads", depth, HEADS),
                                        ("cross_heads", depth, HEADS), ("arbitrary", depth, ARBITRARY)):
                given = [int(v) for v in arch[key]]
                if len(given) != count:
                    raise ValueError(f"{key} needs {count} values, got {len(given)}")
                x += [options.index(v) for v in given] + [0] * (0 if key.startswith("encoder") else L - count)
        except KeyError as exc:
            raise ValueError(f"a hat architecture needs {exc.args[0]!r}") from None
        except ValueError as exc:
            raise ValueError(f"hat: {exc}; embeddings in {EMBEDDINGS}, heads in {HEADS}, ffn in {FFNS}, "
                             f"arbitrary in {ARBITRARY}") from None
        return self.canonical(x)

    def to_string(self, x: Sequence[int]) -> str:
        """``enc640:h4,8,8,4,4,8:f1024,...|dec512:h4,8:x8,4:f2048,3072:a1,3``: each side's embedding, per-layer
        heads and feed-forward widths; the decoder's encoder-decoder heads (x) and arbitrary attention (a)."""
        a = self.decode(x)

        def joined(values: Sequence[int]) -> str:
            return ",".join(map(str, values))

        return (f"enc{a['encoder_embedding']}:h{joined(a['encoder_heads'])}:f{joined(a['encoder_ffn'])}|"
                f"dec{a['decoder_embedding']}:h{joined(a['decoder_heads'])}:x{joined(a['cross_heads'])}:"
                f"f{joined(a['decoder_ffn'])}:a{joined(a['arbitrary'])}")

    def from_string(self, text: str) -> list[int]:
        found = _STRING.fullmatch(text.strip())
        if found is None:
            raise ValueError(f"a hat string is encE:hH,..:fF,..|decD:hH,..:xH,..:fF,..:aA,.. (e.g. "
                             f"{self.to_string([0] * N_VAR)}), got {text!r}")

        def ints(group: str) -> list[int]:
            return [int(v) for v in found[group].split(",")]

        depth = len(ints("dh"))
        return self.encode({"encoder_embedding": int(found["ee"]), "decoder_embedding": int(found["de"]),
                            "decoder_layers": depth, "encoder_heads": ints("eh"), "encoder_ffn": ints("ef"),
                            "decoder_heads": ints("dh"), "cross_heads": ints("dx"), "decoder_ffn": ints("df"),
                            "arbitrary": ints("da")})

    def size(self) -> int:
        per_decoder_layer = len(FFNS) * len(HEADS) * len(HEADS) * len(ARBITRARY)
        encoder = (len(FFNS) * len(HEADS)) ** ENCODER_LAYERS
        return len(EMBEDDINGS) ** 2 * encoder * sum(per_decoder_layer ** n for n in range(1, MAX_DECODER_LAYERS + 1))

    def options_for_input(self, input_shape: Sequence[int]) -> dict[str, Any]:
        """An exported record's first input is (batch, source tokens, 640)."""
        return {"sequence": int(input_shape[1])}

    def to_graph(self, x: Sequence[int]) -> ComputationGraph:
        a = self.decode(x)
        b = GraphBuilder((self.batch_size, self.sequence, max(EMBEDDINGS)))
        target = b.add_input((self.batch_size, self.target, max(EMBEDDINGS)))
        h = _first_features(b, b.input, a["encoder_embedding"])
        encoded = []
        for heads, ffn in zip(a["encoder_heads"], a["encoder_ffn"], strict=True):
            h = post_norm(b, h, attention(b, h, a["encoder_embedding"], heads), a["encoder_embedding"], ffn)
            encoded.append(h)
        y = _first_features(b, target, a["decoder_embedding"])
        width = a["decoder_embedding"]
        for heads, cross, ffn, last in zip(a["decoder_heads"], a["cross_heads"], a["decoder_ffn"], a["arbitrary"],
                                           strict=True):
            y = b.op("layernorm", b.op("add", y, attention(b, y, width, heads)))
            memory = encoded[-1] if last == 1 else b.op("concat", *encoded[-last:])  # along the tokens
            y = post_norm(b, y, attention(b, y, width, cross, memory=memory), width, ffn)
        return b.build(y)


def _first_features(b: GraphBuilder, x: int, width: int) -> int:
    """The super-network's elastic embedding: the first ``width`` features."""
    return b.add_node("slice", [x], axis=2, start=0, end=width, step=1) if width < max(EMBEDDINGS) else x
