"""``hwnas search report``: several runs side by side — hypervolume vs evaluations, mean ± standard error.

Runs normalise their hypervolume by their own first population, so their stored figures are not
comparable across seeds. The report recomputes every run's hypervolume trace in one common normalisation:
bounds from every run's measured points together (or ``--hv-bounds``), reference point 1.1.

Only runs of one space, one device key and one set of objectives compare: latencies of a phone and of a
GPU in one normalisation (and one mean ± SE) would mean nothing. ``group_runs`` sorts runs into such
groups, and each group is normalised and summarised on its own.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwnas.controller.search.hypervolume import HvSpace
from hwnas.controller.search.plots import hypervolume_png, mean_and_se
from hwnas.controller.search.run import measured_matrix, read_run


def group_of(summary: dict) -> tuple[str, str, tuple[str, ...]]:
    """The runs a run compares with: (space, device key, objectives)."""
    config = summary["config"]
    return config["space"], config["device"], tuple(o["name"] for o in summary["objectives"])


def group_label(group: tuple[str, str, tuple[str, ...]]) -> str:
    space, device, objectives = group
    return f"{space} on {device}: {', '.join(objectives)}"


def group_runs(folders: Sequence[Path]) -> dict[tuple[str, str, tuple[str, ...]], list[Path]]:
    """Run folders by ``group_of``, in the order given."""
    groups: dict[tuple[str, str, tuple[str, ...]], list[Path]] = {}
    for folder in folders:
        summary, _ = read_run(folder)
        groups.setdefault(group_of(summary), []).append(folder)
    return groups


@dataclass(frozen=True)
class RunTrace:
    folder: Path
    algo: str
    seed: int
    device: str
    hypervolume: list[float]


def load_traces(folders: Sequence[Path], bounds: HvSpace | None = None) -> tuple[list[RunTrace], HvSpace]:
    runs = [(folder, *read_run(folder)) for folder in folders]
    if not runs:
        raise ValueError("give at least one run folder")
    groups = sorted({group_of(summary) for _, summary, _ in runs})
    if len(groups) > 1:
        raise ValueError(f"the runs do not compare (several spaces, devices or objectives: "
                         f"{'; '.join(map(group_label, groups))}); give runs of one group (``group_runs``)")
    matrices = [measured_matrix(summary, rows) for _, summary, rows in runs]
    if bounds is None:
        everything = np.vstack([m[~np.isnan(m).any(axis=1)] for m in matrices])
        if not len(everything):
            raise ValueError("the runs have no successful evaluation")
        bounds = HvSpace.from_points(everything)
    traces = []
    for (folder, summary, _), matrix in zip(runs, matrices, strict=True):
        ok = ~np.isnan(matrix).any(axis=1)
        trace, last, upto = [], 0.0, bounds.trace(matrix[ok]) if ok.any() else []
        it = iter(upto)
        for good in ok:  # a failed evaluation keeps the hypervolume where it was
            last = next(it) if good else last
            trace.append(last)
        config = summary["config"]
        label = config["algo"] + (" (restricted)" if config.get("restrict") else "")  # AutoBuild-NAS apart
        traces.append(RunTrace(folder, label, config["seed"], config["device"], trace))
    return traces, bounds


def evaluations_to_reach(trace: Sequence[float], target: float) -> int | None:
    """The first evaluation count at which ``trace`` reaches ``target``; None if it never does."""
    hits = np.flatnonzero(np.asarray(trace) >= target - 1e-12)
    return int(hits[0]) + 1 if len(hits) else None


def write_report(groups: Sequence[tuple[str, Sequence[RunTrace]]], out: Path, title: str) -> list[dict]:
    """hypervolume.csv (mean and SE per group, algorithm and evaluation count) and one plot per group
    (hypervolume.png, or hypervolume-N.png for several); summary rows, each naming its group."""
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with (out / "hypervolume.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["group", "algo", "evaluations", "runs", "hypervolume_mean", "hypervolume_se"])
        for number, (label, traces) in enumerate(groups, start=1):
            by_algo: dict[str, list[list[float]]] = {}
            for t in traces:
                by_algo.setdefault(t.algo, []).append(t.hypervolume)
            for algo, curves in by_algo.items():
                mean, se = mean_and_se(curves)
                writer.writerows([label, algo, k + 1, len(curves), f"{m:.6f}", f"{s:.6f}"] for k, (m, s) in
                                 enumerate(zip(mean, se, strict=True)))
                finals = np.array([c[-1] for c in curves])
                se_final = float(finals.std(ddof=1) / np.sqrt(len(finals))) if len(finals) > 1 else 0.0
                rows.append({"group": label, "algo": algo, "runs": len(curves),
                             "evaluations": min(len(c) for c in curves), "final_hv_mean": float(finals.mean()),
                             "final_hv_se": se_final})
            name = "hypervolume.png" if len(groups) == 1 else f"hypervolume-{number}.png"
            hypervolume_png(out / name, by_algo, f"{title}: {label}")
    return rows
