"""Reading back what ``hwnas autogo run`` wrote (``run.json``, ``all.csv``, ``pareto.csv``, ``front/``), for
viewers such as the dashboard; the writer is ``hwnas.controller.autogo.outputs``. Light on purpose: no torch, no
predictor, so a viewer can list runs without loading the search."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any

KIND = "autogo"
ARCH_ID = re.compile(r"[0-9a-f]{8,64}")


def is_autogo_summary(summary: dict[str, Any]) -> bool:
    """``run.json`` of an AutoGO run: marked with its kind, or (runs written before the mark) shaped like one."""
    return summary.get("kind") == KIND or {"input", "metric", "evaluated", "front"} <= summary.keys()


def front_file(folder: Path, arch_id: str, suffix: str) -> Path | None:
    """A front network's file: ``png`` (the picture of the mutation that made it, where one did) or ``onnx``;
    None when the run has no such file (or the id is not an architecture id, so no other path can be named)."""
    if not ARCH_ID.fullmatch(arch_id) or suffix not in ("png", "onnx"):
        return None
    path = folder / "front" / f"{arch_id}.{suffix}"
    return path if path.is_file() else None


def read_autogo_run(folder: Path) -> dict[str, Any]:
    """The run's settings and summary, every evaluated network and the front (rows of ``all.csv`` and
    ``pareto.csv`` with numbers as numbers), and which front networks have a mutation picture. ValueError
    naming the folder when a file is missing or unreadable."""
    try:
        summary = json.loads((folder / "run.json").read_text())
        evaluated, front = (_rows(folder / name) for name in ("all.csv", "pareto.csv"))
    except (OSError, json.JSONDecodeError, csv.Error) as exc:
        raise ValueError(f"{folder} is not a finished AutoGO run: {exc}") from None
    if not is_autogo_summary(summary):
        raise ValueError(f"{folder}/run.json is not an AutoGO run's summary")
    for row in front:
        row["picture"] = front_file(folder, row["arch_id"], "png") is not None
    return {"summary": summary, "metric": summary.get("metric_column") or _metric_column(folder / "all.csv"),
            "evaluated": evaluated, "front": front}


def _metric_column(path: Path) -> str:
    """The metric's column of ``all.csv`` for runs whose summary does not name it: it follows the prediction."""
    with path.open(newline="") as handle:
        header = next(csv.reader(handle))
    return header[header.index("predicted_accuracy") + 1]


def _rows(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="") as handle:
        return [{key: _number(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def _number(text: str) -> Any:
    """CSV text back to int/float where it is a finite one; other text (empty cells, "nan") as it is."""
    for kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            continue
        return value if math.isfinite(value) else text
    return text
