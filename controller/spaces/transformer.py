"""An elastic transformer encoder in the style of HAT's and LINAS's spaces (Wang et al. 2020; LINAS §D.2).

Encoding (14 integers): the embedding width {512, 640}, the number of layers 1-6, then per layer its
attention heads {4, 8} and its feed-forward width {1024, 2048, 3072}; the heads and widths of layers beyond
the depth are masked (zeroed in the canonical encoding). 2 x (6 + 6^2 + ... + 6^6) = 111,972 networks.

Network, as a weight-sharing super-network runs a sub-network: the input is a sequence of token embeddings
at the largest width, (batch, tokens, 640); the sub-network takes its first ``embedding`` features, then
runs post-norm encoder layers (BERT's and fairseq's default): multi-head self-attention with Q, K and V
projections of the embedding width, scores scaled by 1/sqrt(head width), softmax, the heads' outputs
projected back and added to the layer's input, LayerNorm; a GELU feed-forward of the layer's width, added,
LayerNorm. The token lookup is left out: it is a gather whose cost does not depend on the architecture.

No accuracy table exists for this space (HAT's and LINAS's BLEU figures come from super-networks this
project does not ship): searches take accuracy from a user's table or function (``--accuracy
module:function``) or rank by a size proxy (``--accuracy proxy:params``), and the docs say so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hwnas.controller.graph import ComputationGraph, GraphBuilder
from hwnas.controller.spaces.base import SearchSpace

EMBEDDINGS = (512, 640)
HEADS = (4, 8)
FFNS = (1024, 2048, 3072)
MAX_LAYERS = 6


class ElasticTransformer(SearchSpace):
    name = "transformer"
    description = ("HAT/LINAS-style elastic transformer encoder: embedding {512, 640}, 1-6 layers, per layer "
                   "heads {4, 8} and feed-forward {1024, 2048, 3072} (111,972 networks)")
    predictor_features = "one-hot+cg"  # the one-hot for the light predictors, the whole CG for the GNNs

    def __init__(self, sequence: int = 128, batch_size: int = 1) -> None:
        if not 1 <= sequence <= 4096 or batch_size < 1:
            raise ValueError(f"sequence must be 1-4096 tokens and batch_size >= 1, got {sequence} and {batch_size}")
        self.sequence, self.batch_size = sequence, batch_size

    @property
    def n_var(self) -> int:
        return 2 + 2 * MAX_LAYERS

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        high = [len(EMBEDDINGS) - 1, MAX_LAYERS - 1] + [len(HEADS) - 1] * MAX_LAYERS + [len(FFNS) - 1] * MAX_LAYERS
        return np.zeros(self.n_var, dtype=int), np.array(high, dtype=int)

    def variable_name(self, i: int) -> str:
        if i < 2:
            return ("embedding width", "number of layers")[i]
        kind = "heads" if i < 2 + MAX_LAYERS else "feed-forward width"
        return f"{kind} of layer {(i - 2) % MAX_LAYERS}"

    def validate(self, x: Sequence[int]) -> list[int]:
        return self._check_length(x)

    def canonical(self, x: Sequence[int]) -> list[int]:
        x = self.validate(x)
        for layer in range(x[1] + 1, MAX_LAYERS):
            x[2 + layer] = x[2 + MAX_LAYERS + layer] = 0
        return x

    def decode(self, x: Sequence[int]) -> dict[str, Any]:
        """{'embedding': 640, 'layers': 3, 'heads': [4, 8, 8], 'ffn': [1024, 3072, 2048]} (active layers)."""
        x = self.canonical(x)
        layers = x[1] + 1
        return {"embedding": EMBEDDINGS[x[0]], "layers": layers,
                "heads": [HEADS[v] for v in x[2:2 + layers]],
                "ffn": [FFNS[v] for v in x[2 + MAX_LAYERS:2 + MAX_LAYERS + layers]]}

    def encode(self, arch: Mapping[str, Any]) -> list[int]:
        try:
            layers = int(arch["layers"])
            heads, ffn = list(arch["heads"]), list(arch["ffn"])
            if not 1 <= layers <= MAX_LAYERS or len(heads) != layers or len(ffn) != layers:
                raise ValueError(f"layers must be 1-{MAX_LAYERS}, with one heads and one ffn value per layer")
            x = [EMBEDDINGS.index(int(arch["embedding"])), layers - 1]
            x += [HEADS.index(int(h)) for h in heads] + [0] * (MAX_LAYERS - layers)
            x += [FFNS.index(int(f)) for f in ffn] + [0] * (MAX_LAYERS - layers)
        except KeyError as exc:
            raise ValueError(f"a transformer architecture needs {exc.args[0]!r}") from None
        except ValueError as exc:
            raise ValueError(f"transformer: {exc}; embedding in {EMBEDDINGS}, heads in {HEADS}, ffn in {FFNS}") \
                from None
        return self.canonical(x)

    def to_string(self, x: Sequence[int]) -> str:
        """``e640:h4,8,8:f1024,3072,2048``: embedding, then each layer's heads and feed-forward width."""
        arch = self.decode(x)
        return (f"e{arch['embedding']}:h{','.join(map(str, arch['heads']))}:"
                f"f{','.join(map(str, arch['ffn']))}")

    def from_string(self, text: str) -> list[int]:
        parts = text.strip().split(":")
        if len(parts) != 3 or not (parts[0].startswith("e") and parts[1].startswith("h") and
                                   parts[2].startswith("f")):
            raise ValueError(f"a transformer string is eEMBEDDING:hHEADS,...:fFFN,... (e.g. e640:h4,8:f1024,3072), "
                             f"got {text!r}")
        try:
            heads = [int(v) for v in parts[1][1:].split(",")]
            ffn = [int(v) for v in parts[2][1:].split(",")]
            embedding = int(parts[0][1:])
        except ValueError:
            raise ValueError(f"transformer string {text!r}: widths and heads are integers") from None
        if len(heads) != len(ffn):
            raise ValueError(f"transformer string {text!r}: {len(heads)} heads values but {len(ffn)} ffn values")
        return self.encode({"embedding": embedding, "layers": len(heads), "heads": heads, "ffn": ffn})

    def size(self) -> int:
        per_layer = len(HEADS) * len(FFNS)
        return len(EMBEDDINGS) * sum(per_layer ** n for n in range(1, MAX_LAYERS + 1))

    def options_for_input(self, input_shape: Sequence[int]) -> dict[str, Any]:
        """An exported record's input is (batch, tokens, 640): its tokens are the space's sequence length."""
        return {"sequence": int(input_shape[1])}

    def to_graph(self, x: Sequence[int]) -> ComputationGraph:
        arch = self.decode(x)
        width = arch["embedding"]
        b = GraphBuilder((self.batch_size, self.sequence, max(EMBEDDINGS)))
        h = b.input
        if width < max(EMBEDDINGS):  # the super-network's elastic embedding: its first features
            h = b.add_node("slice", [h], axis=2, start=0, end=width, step=1)
        for heads, ffn in zip(arch["heads"], arch["ffn"], strict=True):
            h = post_norm(b, h, attention(b, h, width, heads), width, ffn)
        return b.build(h)


def post_norm(b: GraphBuilder, x: int, attended: int, width: int, ffn: int) -> int:
    """The rest of a post-norm layer: the attention added and LayerNorm'd, then a GELU feed-forward of ``ffn``
    features, added and LayerNorm'd."""
    h = b.op("layernorm", b.op("add", x, attended))
    return b.op("layernorm", b.op("add", h, b.linear(b.op("gelu", b.linear(h, ffn)), width)))


def attention(b: GraphBuilder, x: int, width: int, heads: int, memory: int | None = None) -> int:
    """Multi-head attention of (batch, tokens, width) over itself, or over ``memory`` (batch, other tokens,
    any width: an encoder's output, whose keys and values are projected to ``width``); heads of width // heads
    features."""
    batch, tokens, _ = b.shape(x)
    head = width // heads

    def split(y: int) -> int:  # (batch, n, width) -> (batch, heads, n, head)
        return b.add_node("transpose", [b.reshape(y, (batch, b.shape(y)[1], heads, head))], perm=(0, 2, 1, 3))

    source = x if memory is None else memory
    q, k, v = split(b.linear(x, width)), split(b.linear(source, width)), split(b.linear(source, width))
    keys = b.add_node("transpose", [k], perm=(0, 1, 3, 2))
    scale = float(np.float32(1.0 / math.sqrt(head)))  # as the ONNX export stores it: a re-import is this CG
    scores = b.add_node("scalar_mul", [b.op("matmul", q, keys)], value=scale)
    out = b.op("matmul", b.op("softmax", scores), v)
    out = b.reshape(b.add_node("transpose", [out], perm=(0, 2, 1, 3)), (batch, tokens, width))
    return b.linear(out, width)
