"""PNGs of a search: the Pareto front (measured points, measured front, predicted front) and hypervolume vs
evaluations (mean ± standard error over runs when several are given)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on lab servers
    import matplotlib.pyplot as plt

    return plt


def pareto_png(path: Path, evaluator, evaluated: Sequence, front: Sequence,
               predicted_front: Sequence[tuple[tuple[int, ...], list[float]]], config) -> Path:
    """The first two objectives: every evaluated architecture, the measured front and (LINAS) the predicted one."""
    plt = _pyplot()
    names, columns = evaluator.names, [o.column for o in evaluator.objectives]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if evaluated:
        xy = np.array([[e.values[names[0]], e.values[names[1]]] for e in evaluated])
        ax.scatter(xy[:, 0], xy[:, 1], s=9, color="0.65", label=f"evaluated ({len(evaluated)})")
    if front:
        xy = np.array(sorted((e.values[names[0]], e.values[names[1]]) for e in front))
        ax.plot(xy[:, 0], xy[:, 1], "o-", color="tab:red", ms=4, drawstyle="steps-post",
                label=f"measured front ({len(front)})")
    if predicted_front:
        xy = np.array([[values[0], values[1]] for _, values in predicted_front])
        ax.scatter(xy[:, 0], xy[:, 1], marker="x", s=14, color="tab:blue",
                   label=f"predicted front, last iteration ({len(xy)})")
    ax.set_xlabel(columns[0])
    ax.set_ylabel(columns[1])
    ax.set_title(f"{config.algo} on {config.device} ({config.space}, seed {config.seed})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def mean_and_se(curves: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error per evaluation count over runs, up to the shortest run."""
    n = min(len(c) for c in curves)
    stacked = np.array([c[:n] for c in curves], dtype=np.float64)
    se = stacked.std(axis=0, ddof=1) / np.sqrt(len(curves)) if len(curves) > 1 else np.zeros(n)
    return stacked.mean(axis=0), se


def hypervolume_png(path: Path, curves: Mapping[str, Sequence[Sequence[float]]], title: str) -> Path:
    """One line per label (algorithm), shaded by the standard error over its runs."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for label, runs in curves.items():
        runs = [r for r in runs if len(r)]
        if not runs:
            continue
        mean, se = mean_and_se(runs)
        x = np.arange(1, len(mean) + 1)
        ax.plot(x, mean, label=f"{label} ({len(runs)} run{'s' if len(runs) > 1 else ''})")
        ax.fill_between(x, mean - se, mean + se, alpha=0.25)
    ax.set_xlabel("evaluations (architectures measured)")
    ax.set_ylabel("hypervolume (normalised)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
