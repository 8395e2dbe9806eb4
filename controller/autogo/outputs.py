"""What ``hwnas autogo run`` writes: every evaluated network, the front, its networks, and mutation pictures."""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.controller.autogo.mutation import Mutation
from hwnas.controller.autogo.run_folder import KIND
from hwnas.controller.autogo.search import AutoGO, Individual
from hwnas.controller.graph.ir import ComputationGraph
from hwnas.controller.graph.onnx_export import to_onnx_bytes

PART_COLOURS = ("#b0b0b0", "#8e44ad", "#f39c12")  # Predecessor grey, Segment purple, suCcessor orange


def rows(search: AutoGO, individuals: Sequence[Individual]) -> list[dict[str, Any]]:
    root_macs = max(1, search.root.macs())
    metric = search.metric.column
    return [{"id": i.id, "arch_id": i.graph.arch_id, "iteration": i.iteration,
             "parent": "" if i.parent is None else i.parent, "predicted_accuracy": round(i.predicted_accuracy, 4),
             metric: "" if i.metric is None else i.metric, "macs": i.macs, "params": i.graph.params(),
             "macs_change_pct": round(100 * (i.macs / root_macs - 1), 2), "nodes": len(i.graph.nodes),
             "segment": "" if i.mutation is None else i.mutation.segment,
             "changes": "" if i.mutation is None else i.mutation.changes, "error": i.error,
             "outside_training": i.outside}
            for i in individuals]


def write_csv(path: Path, table: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)


def write_outputs(search: AutoGO, out: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """all.csv, networks/<arch_id>.json (every CG), pareto.csv, front/<arch_id>.onnx + .json, and .png (the
    mutation that made each front network), mutation.png (the first of them), run.json; returns the summary.
    ``hwnas.controller.autogo.run_folder`` reads them back."""
    out.mkdir(parents=True, exist_ok=True)
    front = sorted(search.front(), key=lambda i: -i.predicted_accuracy)
    write_csv(out / "all.csv", rows(search, search.population))
    write_csv(out / "pareto.csv", rows(search, front))
    for folder, individuals in (("networks", search.population), ("front", front)):
        (out / folder).mkdir(exist_ok=True)
        for individual in individuals:
            (out / folder / f"{individual.graph.arch_id}.json").write_text(individual.graph.to_json())
    for individual in front:
        (out / "front" / f"{individual.graph.arch_id}.onnx").write_bytes(to_onnx_bytes(individual.graph))
        if individual.mutation is not None:
            plot_mutation(individual.mutation, out / "front" / f"{individual.graph.arch_id}.png",
                          search.database.segments[individual.mutation.segment].source)
    shown = next((i for i in front if i.mutation is not None), None)
    if shown is not None:
        shutil.copyfile(out / "front" / f"{shown.graph.arch_id}.png", out / "mutation.png")
    root = search.population[0]
    summary = {"kind": KIND, **settings, "input_name": settings["input"], "metric_column": search.metric.column,
               "minimise": search.metric.minimise, "evaluated": len(search.population), "front": len(front),
               "input": {"arch_id": root.graph.arch_id, "predicted_accuracy": root.predicted_accuracy,
                         search.metric.column: root.metric, "macs": root.macs},
               "milp_solves": len(search.mutator.solve_seconds),
               "milp_median_ms": round(1000 * float(np.median(search.mutator.solve_seconds)), 3)
               if search.mutator.solve_seconds else None}
    (out / "run.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _layout(graph: ComputationGraph, nodes: Sequence[int]) -> dict[int, tuple[float, float]]:
    """Rows by longest path within the window, nodes of a row side by side."""
    level: dict[int, int] = {}
    for k in nodes:
        level[k] = 1 + max((level[i] for i in graph.nodes[k].inputs if i in level), default=-1)
    by_level: dict[int, list[int]] = {}
    for k in nodes:
        by_level.setdefault(level[k], []).append(k)
    return {k: (j - (len(row) - 1) / 2, -lv) for lv, row in by_level.items() for j, k in enumerate(row)}


def _draw(ax, graph: ComputationGraph, window: Sequence[int], colour_of, title: str) -> None:
    from hwnas.controller.autogo.segment import op_token

    where = _layout(graph, window)
    for k in window:
        for i in graph.nodes[k].inputs:
            if i in where:
                ax.annotate("", where[k], where[i], arrowprops={"arrowstyle": "->", "color": "#555", "lw": 0.8})
    for k in window:
        node = graph.nodes[k]
        label = op_token(node, graph.nodes[node.inputs[0]].out_shape[1] if node.inputs else None)
        ax.text(*where[k], f"{label}\n{'x'.join(map(str, node.out_shape[1:]))}", ha="center", va="center",
                fontsize=6, bbox={"boxstyle": "round", "fc": colour_of(k), "ec": "#333", "lw": 0.5})
    xs = [p[0] for p in where.values()]
    ys = [p[1] for p in where.values()]
    ax.set_xlim(min(xs) - 1, max(xs) + 1)
    ax.set_ylim(min(ys) - 1, max(ys) + 1)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def plot_mutation(mutation: Mutation, path: Path, source: str = "", context: int = 8) -> Path:
    """Parent with the replaced run highlighted beside the child with the new segment highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start, stop = mutation.source.nodes[0], mutation.source.nodes[-1] + 1
    new_stop = mutation.span[1]
    parent_window = range(max(0, start - context), min(len(mutation.parent.nodes), stop + context))
    child_window = range(max(0, start - context), min(len(mutation.child.nodes), new_stop + context))
    height = max(len(parent_window), len(child_window)) * 0.35 + 1
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, height))
    _draw(left, mutation.parent, parent_window,
          lambda k: PART_COLOURS[1] if start <= k < stop else PART_COLOURS[0 if k < start else 2],
          f"parent: replaced nodes {start}-{stop - 1} (purple)")
    part = mutation.parts()
    _draw(right, mutation.child, child_window, lambda k: PART_COLOURS[part[k]],
          f"child: segment {mutation.segment}{f' (mined from {source})' if source else ''}, "
          f"{mutation.changes} resolution change(s)")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
