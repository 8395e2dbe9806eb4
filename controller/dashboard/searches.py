"""What the Searches page shows: search runs found in folders (``hwnas search`` outputs), their hypervolume
curves in one common normalisation per set of objectives, and one run's measured and predicted fronts; and
AutoGO runs (``hwnas autogo run`` outputs) with their front of predicted accuracy vs the hardware metric and the
picture of the mutation behind each front network.

Runs live in folders, not in the store, so the dashboard is told where (``--runs DIR``): a run folder itself
or a folder of run folders. Folders without a finished run are listed with the reason, not skipped silently.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hwnas.controller.autogo.run_folder import front_file, is_autogo_summary, read_autogo_run
from hwnas.controller.search.report import group_label, group_of, load_traces
from hwnas.controller.search.run import read_run


def run_folders(roots: Sequence[Path]) -> dict[str, Path]:
    """Every folder holding a ``run.json`` under ``roots`` (one level down), by a unique name."""
    found: list[Path] = []
    for root in roots:
        candidates = [root] if (root / "run.json").is_file() else sorted(p for p in root.iterdir() if p.is_dir()) \
            if root.is_dir() else []
        found += [p for p in candidates if (p / "run.json").is_file()]
    names: dict[str, Path] = {}
    for folder in found:
        name = folder.name if folder.name not in names else f"{folder.parent.name}/{folder.name}"
        names[name] = folder
    return names


def is_autogo_run(folder: Path) -> bool:
    """Whether the run folder holds an AutoGO run (else a search run, or something unreadable)."""
    try:
        return is_autogo_summary(json.loads((folder / "run.json").read_text()))
    except (OSError, json.JSONDecodeError, AttributeError):
        return False


def searches(roots: Sequence[Path]) -> dict[str, Any]:
    """The search runs with their summary, every run's hypervolume trace normalised with the runs that share its
    objectives (so curves on one plot compare), and the AutoGO runs with theirs."""
    runs, autogo, problems, groups = [], [], [], defaultdict(list)
    for name, folder in run_folders(roots).items():
        try:
            if is_autogo_run(folder):
                autogo.append(_autogo_summary(name, read_autogo_run(folder)))
                continue
            summary, _ = read_run(folder)
        except ValueError as exc:
            problems.append({"run": name, "error": str(exc)})
            continue
        config = summary["config"]
        objectives = tuple(o["name"] for o in summary["objectives"])
        groups[group_of(summary)].append((name, folder))
        runs.append({"run": name, "algo": config["algo"] + (" (restricted)" if config.get("restrict") else ""),
                     "space": config["space"], "device": config["device"], "seed": config["seed"],
                     "objectives": list(objectives), "evaluations": summary["evaluations"],
                     "failed": summary["failed"], "pareto_size": summary["pareto_size"],
                     "wall_s": round(summary["wall_s"], 1),
                     "controller_seconds_per_iteration": summary.get("controller_seconds_per_iteration", [])})
    curves = []
    for group, members in groups.items():  # one normalisation per space, device key and set of objectives
        try:
            traces, _ = load_traces([folder for _, folder in members])
        except ValueError as exc:
            problems += [{"run": name, "error": str(exc)} for name, _ in members]
            continue
        curves += [{"run": name, "objectives": list(group[2]), "group": group_label(group),
                    "hypervolume": trace.hypervolume} for (name, _), trace in zip(members, traces, strict=True)]
    return {"runs": runs, "autogo": autogo, "curves": curves, "problems": problems}


def _autogo_summary(name: str, run: dict[str, Any]) -> dict[str, Any]:
    summary, column = run["summary"], run["metric"]
    values = [r[column] for r in run["front"] if isinstance(r[column], (int, float))]
    root = run["evaluated"][0] if run["evaluated"] else {}
    return {"run": name, "input": summary.get("input_name") or root.get("arch_id", ""), "metric": column,
            "device": summary.get("device", ""), "iterations": summary.get("iterations"),
            "evaluated": summary["evaluated"], "front": summary["front"], "input_metric": root.get(column),
            "best_on_front": (min if summary.get("minimise", True) else max)(values, default=None)}



def search_run(roots: Sequence[Path], name: str) -> dict[str, Any]:
    """One run: its measured points, measured front and predicted front (where the algorithm has one), by
    objective column, each point with its architecture; KeyError for an unknown run."""
    folder = run_folders(roots)[name]
    summary, rows = read_run(folder)
    columns = [o["column"] for o in summary["objectives"]]
    measured = [{"arch": r["arch"], "arch_id": r["arch_id"], **{c: float(r[c]) for c in columns}}
                for r in rows if not r["error"] and all(r[c] for c in columns)]
    front = _read_csv(folder / "pareto.csv")
    predicted = _read_csv(folder / "predicted_front.csv")
    return {"run": name, "config": summary["config"], "objectives": summary["objectives"], "measured": measured,
            "front": [{"arch": r["arch"], "arch_id": r.get("arch_id", ""), **{c: float(r[c]) for c in columns}}
                      for r in front],
            "predicted": [{"arch": r["arch"], **{c: float(r[f"predicted_{c}"]) for c in columns
                                                 if f"predicted_{c}" in r}} for r in predicted],
            "controller_seconds_per_iteration": summary.get("controller_seconds_per_iteration", []),
            "hypervolume": summary.get("hypervolume", {})}


def autogo_run(roots: Sequence[Path], name: str) -> dict[str, Any]:
    """One AutoGO run: every evaluated network and the front by predicted accuracy and the metric, the input
    network (the first row), and the front networks' picture and ONNX addresses; KeyError for an unknown run
    (or one that is a search run)."""
    folder = run_folders(roots)[name]
    if not is_autogo_run(folder):
        raise KeyError(name)
    run = read_autogo_run(folder)
    for row in run["front"]:
        row["picture_url"] = f"/searches/{name}/front/{row['arch_id']}.png" if row.pop("picture") else ""
        row["onnx_url"] = f"/searches/{name}/front/{row['arch_id']}.onnx"
    return {"run": name, **run}


def run_file(roots: Sequence[Path], name: str, file: str) -> tuple[Path, str] | None:
    """A front network's mutation picture or ONNX of an AutoGO run, with its media type; None for anything
    else (so no path outside a run's ``front/`` folder can be asked for)."""
    folder = run_folders(roots).get(name)
    arch_id, _, suffix = file.partition(".")
    path = None if folder is None else front_file(folder, arch_id, suffix)
    return None if path is None else (path, "image/png" if suffix == "png" else "application/onnx")


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))
