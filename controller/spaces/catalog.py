"""Describe and export architectures of a space: what ``hwnas space`` prints and writes."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.controller.graph.model_formats import identity
from hwnas.controller.graph.onnx_export import to_onnx_bytes
from hwnas.controller.spaces import SPACES, SearchSpace, get_space
from hwnas.controller.spaces.nb201 import NasBench201

INDEX_COLUMNS = ("arch_id", "space", "arch", "encoding", "macs", "params", "onnx", "cg")


def describe(space: SearchSpace, x: Sequence[int]) -> dict[str, Any]:
    """Everything a user wants to see about one architecture."""
    graph = space.to_graph(x)
    info: dict[str, Any] = {
        "space": space.name,
        "arch": space.to_string(x),
        "encoding": list(x),
        "arch_id": graph.arch_id,
        "macs": graph.macs(),
        "params": graph.params(),
        "input_shape": list(graph.input_shape),
        "ops": dict(sorted(graph.op_counts().items())),
    }
    if isinstance(space, NasBench201):
        info["nb201_index"] = space.to_index(x)
        info["eagle_vector"] = space.to_eagle_vector(x)
    return info


def parse_arch(text: str, space_name: str | None = None, **options: Any) -> tuple[SearchSpace, list[int]]:
    """An arch given as a space's string form, a comma-separated encoding, or (NB-201) an index.

    Without ``space_name`` every space's string parser is tried; the error lists why each refused.
    """
    names = [space_name] if space_name else sorted(SPACES)
    reasons = []
    for name in names:
        space = get_space(name, **options)
        candidates: list[Callable[[], list[int]]] = [lambda s=space: s.from_string(text)]
        if space_name:
            if "," in text:
                candidates.append(lambda s=space: s.canonical([int(v) for v in text.split(",")]))
            if text.isdigit() and isinstance(space, NasBench201):
                candidates.append(lambda s=space: s.from_index(int(text)))
        for parse in candidates:
            try:
                return space, parse()
            except ValueError as exc:
                reasons.append(f"{name}: {exc}")
    raise ValueError(f"cannot read {text!r} as an architecture:\n  " + "\n  ".join(reasons))


def sample(space: SearchSpace, n: int, seed: int) -> list[list[int]]:
    """``n`` distinct random architectures that are networks (fewer only if the space is smaller: the caller
    says so, see ``sample_note``); encodings with no network (NB-201's unconnected cells, NB-101's cells
    without a path) are drawn again.

    Asked for more than half of a space it can list, it lists the networks and shuffles them: drawing at
    random until all but a few are found (a coupon collector) took minutes, silently, for NB-201's 15,284.
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    rng = np.random.default_rng(seed)
    if 2 * n > space.size():
        try:
            networks = [x for x in space.enumerate() if space.has_network(x)]
        except NotImplementedError:  # too many to list: such a space is never mostly sampled
            networks = None
        if networks is not None:
            return [networks[i] for i in rng.permutation(len(networks))[:n]]
    seen: dict[tuple[int, ...], None] = {}
    attempts = 0
    while len(seen) < n and attempts < 50 * n:
        x = space.sample(rng)
        attempts += 1
        if space.has_network(x):
            seen.setdefault(tuple(x), None)
    return [list(x) for x in seen]


def sample_note(space: SearchSpace, asked: int, got: int) -> str:
    """What to tell a user who asked for ``asked`` architectures and got ``got`` ("" when they got them)."""
    if got >= asked:
        return ""
    return (f"{space.name} has only {got:,} distinct networks (of {space.size():,} encodings); "
            f"sampling all {got:,} of them instead of {asked:,}")


def export(space: SearchSpace, archs: Iterable[Sequence[int]], out_dir: Path,
           progress: Callable[[Iterable], Iterable] = lambda it: it) -> list[dict[str, Any]]:
    """Write ``<arch_id>.onnx`` and ``<arch_id>.json`` (CG) per arch, and ``index.csv`` listing them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for x in progress(list(archs)):
        graph = space.to_graph(x)
        arch_id = graph.arch_id
        # The identity travels in the model, as in every model a campaign sends (the replay backend reads it).
        (out_dir / f"{arch_id}.onnx").write_bytes(to_onnx_bytes(graph, metadata=identity(space.name,
                                                                                         space.to_string(x), arch_id)))
        (out_dir / f"{arch_id}.json").write_text(graph.to_json(indent=1))
        rows.append({"arch_id": arch_id, "space": space.name, "arch": space.to_string(x),
                     "encoding": " ".join(map(str, x)), "macs": graph.macs(), "params": graph.params(),
                     "onnx": f"{arch_id}.onnx", "cg": f"{arch_id}.json"})
    with (out_dir / "index.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=INDEX_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return rows
