"""CGs as strings, a BPE vocabulary trained on them with sentencepiece, and greedy BPE segmentation.

Each node (the graph input aside) gets the label ``op-token | sorted incoming op-tokens | sorted outgoing
op-tokens``, AutoGO's node labelling; each distinct label is one CJK character (they span tens of
thousands of symbols), so a CG in topological order is a string and frequent subgraphs are frequent
substrings. sentencepiece trains the BPE vocabulary; segmentation is sentencepiece's BPE encoding
(repeatedly merge the adjacent pair whose merge scores highest, leftmost first), written out here because
AutoGO segments with a random *sub*-vocabulary and the Python binding of sentencepiece cannot mask pieces.
As in sentencepiece, a masked piece is still merged through and then split back into the pieces it was
merged from, so larger pieces stay reachable. A test checks that with the full vocabulary the result is
sentencepiece's own. A label the vocabulary never saw stays a one-node segment (sentencepiece would join
a run of unknown symbols into one piece).
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from hwnas.controller.autogo.segment import op_token
from hwnas.controller.errors import SettingError
from hwnas.controller.graph.ir import ComputationGraph

SYMBOL_BASE = 0x4E00  # CJK Unified Ideographs: 20,992 code points, all one script, untouched by normalisation
UNSEEN_BASE = 0xE000  # Private Use Area: labels the vocabulary never saw (each ends up a one-node segment)


def node_labels(graph: ComputationGraph) -> list[str]:
    """The label of every node but the input, in the graph's (topological) order."""
    users = graph.consumers()
    tokens = [op_token(n, graph.nodes[n.inputs[0]].out_shape[1] if n.inputs else None) for n in graph.nodes]
    return [f"{tokens[k]}|{','.join(sorted(tokens[i] for i in node.inputs))}|"
            f"{','.join(sorted(tokens[u] for u in users[k]))}"
            for k, node in enumerate(graph.nodes) if k > 0]


def make_alphabet(label_lists: Iterable[Sequence[str]]) -> dict[str, str]:
    """One symbol per distinct label, most frequent first (ties by label): deterministic."""
    counts = Counter(label for labels in label_lists for label in labels)
    ordered = sorted(counts, key=lambda label: (-counts[label], label))
    if len(ordered) > 0x9FFF - SYMBOL_BASE:
        raise ValueError(f"{len(ordered)} distinct node labels: more than the symbol range holds")
    return {label: chr(SYMBOL_BASE + k) for k, label in enumerate(ordered)}


def to_string(labels: Sequence[str], alphabet: Mapping[str, str]) -> str:
    unseen: dict[str, str] = {}
    out = []
    for label in labels:
        symbol = alphabet.get(label)
        if symbol is None:
            symbol = unseen.setdefault(label, chr(UNSEEN_BASE + len(unseen)))
        out.append(symbol)
    return "".join(out)


def train_bpe(sequences: Sequence[str], vocab_size: int, threads: int = 2) -> tuple[bytes, dict[str, float]]:
    """A sentencepiece BPE model (its protobuf bytes) and its pieces with their merge scores."""
    import sentencepiece as spm

    if vocab_size < 2:
        raise SettingError("vocab_size", f"must be >= 2, got {vocab_size}")
    symbols = len(set("".join(sequences)))
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sequences), model_writer=buffer, model_type="bpe",
        vocab_size=max(vocab_size, symbols + 1), hard_vocab_limit=False, character_coverage=1.0,
        normalization_rule_name="identity", add_dummy_prefix=False, remove_extra_whitespaces=False,
        split_by_unicode_script=False, split_by_number=False, split_by_whitespace=False,
        max_sentencepiece_length=16, max_sentence_length=1 << 20, bos_id=-1, eos_id=-1, pad_id=-1, unk_id=0,
        num_threads=threads, minloglevel=2)
    model = buffer.getvalue()
    processor = spm.SentencePieceProcessor(model_proto=model)
    pieces = {processor.id_to_piece(i): processor.get_score(i) for i in range(processor.get_piece_size())
              if not processor.is_unknown(i)}
    return model, pieces


@dataclass
class _Symbol:
    start: int
    stop: int
    parts: tuple[_Symbol, _Symbol] | None = None


def segment_string(text: str, scores: Mapping[str, float], allowed: set[str] | None = None) -> list[tuple[int, int]]:
    """Greedy BPE: ``[start, stop)`` spans covering ``text``; pieces outside ``allowed`` split back."""
    symbols = [_Symbol(k, k + 1) for k in range(len(text))]
    while len(symbols) > 1:
        best, best_score = -1, float("-inf")
        for k in range(len(symbols) - 1):
            score = scores.get(text[symbols[k].start:symbols[k + 1].stop])
            if score is not None and score > best_score:
                best, best_score = k, score
        if best < 0:
            break
        left, right = symbols[best], symbols[best + 1]
        symbols[best:best + 2] = [_Symbol(left.start, right.stop, (left, right))]
    spans: list[tuple[int, int]] = []

    def emit(symbol: _Symbol) -> None:
        if symbol.parts is not None and allowed is not None and text[symbol.start:symbol.stop] not in allowed:
            emit(symbol.parts[0])
            emit(symbol.parts[1])
        else:
            spans.append((symbol.start, symbol.stop))

    for symbol in symbols:
        emit(symbol)
    return spans
