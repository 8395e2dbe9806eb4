"""The segment database: frequent subgraphs of a corpus of CGs, mined with BPE, isomorphic copies dropped.

Stored as a folder of plain data, never pickles: ``segments.json`` (the node-label alphabet, the BPE pieces
with their scores, every segment template and the corpus it came from) and ``bpe.model`` (sentencepiece's
own protobuf model, kept so the vocabulary can be inspected or reused with sentencepiece).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.controller.autogo.bpe import make_alphabet, node_labels, segment_string, to_string, train_bpe
from hwnas.controller.autogo.segment import Region, Segment, extract, region
from hwnas.controller.errors import SettingError
from hwnas.controller.graph.ir import ComputationGraph

DB_FORMAT = "hwnas.autogo.segments/1"
MAX_STRUCTURES_PER_PIECE = 3  # one piece string can stand for a few different subgraphs; keep the first few


@dataclass
class SegmentDatabase:
    alphabet: dict[str, str]
    scores: dict[str, float]  # BPE pieces and their merge scores
    segments: list[Segment]
    corpus: dict[str, int] = field(default_factory=dict)  # family -> graphs mined
    bpe_model: bytes = b""

    # -- segmentation --------------------------------------------------------------------------------
    def sequence(self, graph: ComputationGraph) -> str:
        return to_string(node_labels(graph), self.alphabet)

    def sub_vocabulary(self, rng: np.random.Generator, keep_multi: float = 0.5) -> set[str]:
        """Every single-node piece and a random ``keep_multi`` share of the multi-node ones (AutoGO's V')."""
        return {p for p in self.scores if len(p) == 1 or rng.random() < keep_multi}

    def segment(self, graph: ComputationGraph, allowed: set[str] | None = None) -> list[Region]:
        """``graph`` (in its own node order, which must be topological) cut into consecutive regions."""
        users = graph.consumers()
        spans = segment_string(self.sequence(graph), self.scores, allowed)
        return [region(graph, start + 1, stop + 1, users) for start, stop in spans]

    def replacements(self, n_inputs: int, n_outputs: int, domain: str | None = "map") -> list[int]:
        """Indices of mutable segments with this many input and output ports that can be placed in ``domain``
        (``map`` or ``tokens``; None: nowhere)."""
        return [k for k, s in enumerate(self.segments)
                if s.n_inputs == n_inputs and s.n_outputs == n_outputs and s.mutable and domain in s.domains]

    # -- storage ---------------------------------------------------------------------------------------
    def save(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "bpe.model").write_bytes(self.bpe_model)
        data = {"format": DB_FORMAT, "corpus": self.corpus, "alphabet": self.alphabet,
                "pieces": sorted(self.scores.items(), key=lambda item: -item[1]),
                "segments": [s.to_dict() for s in self.segments]}
        path = folder / "segments.json"
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False))
        return path

    @classmethod
    def load(cls, folder: Path) -> SegmentDatabase:
        path = folder / "segments.json"
        if not path.is_file():
            raise FileNotFoundError(f"{folder} is not a segment database (no segments.json); build one with "
                                    "`hwnas autogo build-db --out DIR`")
        data: dict[str, Any] = json.loads(path.read_text())
        if data.get("format") != DB_FORMAT:
            raise ValueError(f"{path}: format must be {DB_FORMAT!r}, got {data.get('format')!r}")
        model = folder / "bpe.model"
        return cls(dict(data["alphabet"]), {p: float(s) for p, s in data["pieces"]},
                   [Segment.from_dict(s) for s in data["segments"]], dict(data["corpus"]),
                   model.read_bytes() if model.is_file() else b"")

    def summary(self) -> dict[str, Any]:
        sizes = [len(s.nodes) for s in self.segments]
        return {"segments": len(self.segments), "mutable": sum(s.mutable for s in self.segments),
                "pieces": len(self.scores), "labels": len(self.alphabet), "corpus": self.corpus,
                "largest": max(sizes, default=0), "mean_nodes": round(float(np.mean(sizes)), 2) if sizes else 0.0}


def build_database(corpus: Iterable[tuple[str, ComputationGraph]], vocab_size: int = 2000,
                   progress: Callable[[Iterable], Iterable] = lambda it: it) -> SegmentDatabase:
    """Mine segments from ``(family, graph)`` pairs: label, train BPE, map pieces back, drop isomorphs."""
    graphs = [(family, graph.canonical()) for family, graph in corpus]
    if not graphs:
        raise ValueError("the corpus is empty: give at least one network")
    label_lists = [node_labels(g) for _, g in graphs]
    alphabet = make_alphabet(label_lists)
    sequences = [to_string(labels, alphabet) for labels in label_lists]
    model, scores = train_bpe(sequences, vocab_size)
    found: dict[str, list[Segment]] = {}
    for (family, graph), text in progress(list(zip(graphs, sequences, strict=True))):
        users = graph.consumers()
        for start, stop in segment_string(text, scores):
            _collect(found, text[start:stop], graph, region(graph, start + 1, stop + 1, users), family)
    missing = [p for p in scores if p not in found]
    for piece in missing:  # pieces the greedy encoding never ends on: find them as substrings
        for (family, graph), text in zip(graphs, sequences, strict=True):
            at = text.find(piece)
            if at >= 0:
                _collect(found, piece, graph, region(graph, at + 1, at + 1 + len(piece)), family)
                break
    corpus_sizes: dict[str, int] = {}
    for family, _ in graphs:
        corpus_sizes[family] = corpus_sizes.get(family, 0) + 1
    return SegmentDatabase(alphabet, scores, unique([s for piece in scores for s in found.get(piece, [])]),
                           corpus_sizes, model)


def _collect(found: dict[str, list[Segment]], piece: str, graph: ComputationGraph, where: Region,
             family: str) -> None:
    kept = found.setdefault(piece, [])
    if len(kept) < MAX_STRUCTURES_PER_PIECE and where.inputs:
        segment = extract(graph, where, family)
        if not any(segment.isomorphic(other) for other in kept):
            kept.append(segment)


def unique(segments: Sequence[Segment]) -> list[Segment]:
    """Segments up to isomorphism: bucket by an invariant and port counts, then check exactly within a bucket."""
    buckets: dict[tuple[int, int, str], list[Segment]] = {}
    out = []
    for segment in segments:
        bucket = buckets.setdefault((segment.n_inputs, segment.n_outputs, segment.invariant()), [])
        if not any(segment.isomorphic(other) for other in bucket):
            bucket.append(segment)
            out.append(segment)
    return out


def standard_corpus(samples_per_space: int, seed: int = 0, spaces: Sequence[str] | None = None
                    ) -> list[tuple[str, ComputationGraph]]:
    """Random samples of the spaces (default: every registered one) plus the zoo's networks (ResNet-50,
    VGG-16, EDSR). Each family takes a share of the BPE vocabulary: a database for one kind of network
    (EDSR's conv/ReLU/pixel-shuffle) finds more of its segments when built from fewer, closer families."""
    from hwnas.controller.graph.zoo import ZOO
    from hwnas.controller.spaces import SPACES, get_space
    from hwnas.controller.spaces.catalog import sample

    corpus = []
    unknown = sorted(set(spaces or ()) - set(SPACES))
    if unknown:
        raise SettingError("spaces", f"{unknown} are not registered spaces; known: {sorted(SPACES)}")
    for name in sorted(spaces or SPACES):
        space = get_space(name)
        corpus += [(name, space.to_graph(x)) for x in sample(space, samples_per_space, seed)
                   if space.has_network(x)]
    corpus += [(name, build()) for name, build in sorted(ZOO.items())]
    return corpus
