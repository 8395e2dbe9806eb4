"""One search run end to end: evaluator, algorithm, hypervolume after every evaluation, files in ``--out``.

Files written (``docs/search.md`` documents them):

- ``run.json``: the configuration, the hypervolume's normalisation bounds and reference point, timings;
- ``measured.csv``: every evaluated architecture in order, its objectives and the hypervolume after it;
- ``pareto.csv``: the measured non-dominated architectures;
- ``predicted_front.csv`` (LINAS): the last inner search's predicted front;
- ``pareto.png`` and ``hypervolume.png``.

``measured.csv`` is appended as evaluations come in, so an interrupted run leaves what it had. A re-run of
the same command starts over and replays its measurements from the store (see ``search/measure.py``).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from hwnas.controller.reporting.spreadsheet import spreadsheet_safe
from hwnas.controller.search.brpnas import BrpNas
from hwnas.controller.search.evaluator import Evaluation, Evaluator
from hwnas.controller.search.hypervolume import HvSpace, pareto_mask
from hwnas.controller.search.problem import SearchAlgorithm, SearchProblem, drive


@dataclass(frozen=True)
class SearchConfig:
    """What a run searches, on what and for how long; the algorithm's own settings live in the algorithm."""

    space: str
    device: str
    objectives: list[str]
    algo: str
    evals: int
    seed: int
    accuracy: str = ""
    restrict: str = ""  # the reduced space (AutoBuild-NAS) the search is confined to, if any


class SearchFailed(RuntimeError):
    """No evaluation of the run succeeded: there is no front, no hypervolume and nothing to plot."""


class HypervolumeLog:
    """Hypervolume after each evaluation; bounds fixed by the first batch unless given."""

    def __init__(self, evaluator: Evaluator, bounds: HvSpace | None) -> None:
        self.evaluator, self.bounds = evaluator, bounds
        self.values: list[float] = []
        self._front = np.empty((0, len(evaluator.objectives)))

    def add(self, batch: list[Evaluation]) -> None:
        ok = [e for e in batch if e.ok]
        if self.bounds is None and ok:
            self.bounds = HvSpace.from_points(self.evaluator.minimised(ok))
        for e in batch:
            if e.ok:
                F = np.vstack([self._front, self.evaluator.minimised([e])])
                self._front = F[pareto_mask(F)]
            self.values.append(self.bounds.hypervolume(self._front) if self.bounds is not None else 0.0)


class SearchRun:
    def __init__(self, config: SearchConfig, algorithm: SearchAlgorithm,
                 evaluator_factory: Callable[[Callable], Evaluator], out: Path, space,
                 bounds: HvSpace | None = None, note: Callable[[str], None] = print,
                 progress: Callable[[Evaluation, float], None] = lambda e, hv: None) -> None:
        self.config, self.algorithm, self.out, self.space = config, algorithm, out, space
        self.note, self.progress = note, progress
        fitted = algorithm.fit_budget(config.evals)
        if fitted:
            note(fitted)
        out.mkdir(parents=True, exist_ok=True)
        self.evaluator = evaluator_factory(self._on_evaluated)
        self.hv = HypervolumeLog(self.evaluator, bounds)
        self._csv = (out / "measured.csv").open("w", newline="")
        self._writer = csv.writer(self._csv)
        self._writer.writerow(["eval", "iteration", "arch", "encoding", "arch_id",
                               *[o.column for o in self.evaluator.objectives], "hypervolume", "error"])

    def _on_evaluated(self, batch: list[Evaluation]) -> None:
        self.hv.add(batch)
        for e, hv in zip(batch, self.hv.values[-len(batch):], strict=True):
            self._writer.writerow([e.index, e.iteration, e.arch, " ".join(map(str, e.encoding)), e.arch_id,
                                   *[e.values.get(n, "") for n in self.evaluator.names], f"{hv:.6f}",
                                   spreadsheet_safe(e.error)])
            self.progress(e, hv)
        self._csv.flush()

    def run(self) -> SearchAlgorithm:
        """Run the algorithm to the end of the budget and write the run's files; returns the algorithm."""
        problem = SearchProblem(self.space, self.evaluator, self.config.seed, self.note)
        started = time.perf_counter()
        try:
            drive(self.algorithm, problem)
        finally:
            self._csv.close()
        self._write_outputs(time.perf_counter() - started)
        if self.evaluator.history and not self.evaluator.successful():
            from hwnas.controller.reporting.tables import failure_summary

            raise SearchFailed(f"every evaluation failed ({self.out / 'measured.csv'} lists them): "
                               f"{failure_summary(self.evaluator.failure_causes())}")
        return self.algorithm

    def _write_outputs(self, wall_s: float) -> None:
        algorithm = self.algorithm
        ok = self.evaluator.successful()
        names, columns = self.evaluator.names, [o.column for o in self.evaluator.objectives]
        F = self.evaluator.minimised(ok)
        front = [ok[i] for i in np.flatnonzero(pareto_mask(F))] if len(ok) else []
        with (self.out / "pareto.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["eval", "arch", "arch_id", *columns])
            for e in sorted(front, key=lambda e: e.values[names[0]]):
                writer.writerow([e.index, e.arch, e.arch_id, *[e.values[n] for n in names]])
        if algorithm.predicted_front:
            with (self.out / "predicted_front.csv").open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["arch", *[f"predicted_{c}" for c in columns]])
                for x, values in algorithm.predicted_front:
                    writer.writerow([self.space.to_string(x), *values])
        summary = {
            "config": {**asdict(self.config), **algorithm.settings()},
            "objectives": [{"name": o.name, "column": o.column, "minimise": o.minimise, "source": o.source}
                           for o in self.evaluator.objectives],
            "hypervolume": {"bounds_minimisation_form": self.hv.bounds.to_dict() if self.hv.bounds else None,
                            "final": self.hv.values[-1] if self.hv.values else 0.0},
            "evaluations": len(self.evaluator.history),
            "failed": len(self.evaluator.history) - len(ok),
            "pareto_size": len(front),
            "wall_s": wall_s,
            "controller_seconds_per_iteration": algorithm.iteration_seconds,
        }
        if isinstance(algorithm, BrpNas):
            best = algorithm.best(self.evaluator)
            summary["best_within_latency_max"] = None if best is None else {
                "eval": best.index, "arch": best.arch, "arch_id": best.arch_id, **best.values}
        summary["failure_causes"] = dict(self.evaluator.failure_causes())
        (self.out / "run.json").write_text(json.dumps(summary, indent=2) + "\n")
        if not ok:
            return  # nothing measured: no front and no hypervolume to plot
        from hwnas.controller.search.plots import hypervolume_png, pareto_png

        pareto_png(self.out / "pareto.png", self.evaluator, ok, front, algorithm.predicted_front, self.config)
        hypervolume_png(self.out / "hypervolume.png", {self.config.algo: [self.hv.values]},
                        f"{self.config.space} on {self.config.device}")


def read_run(folder: Path) -> tuple[dict, list[dict[str, str]]]:
    """A run's ``run.json`` and ``measured.csv`` rows; ValueError naming the folder when either is missing."""
    try:
        summary = json.loads((folder / "run.json").read_text())
        with (folder / "measured.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{folder} is not a finished search run: {exc}") from None
    return summary, rows


def measured_matrix(summary: dict, rows: Sequence[dict[str, str]]) -> np.ndarray:
    """(n, m) minimisation-form values of a run's evaluations in order; NaN rows for failures."""
    columns = [o["column"] for o in summary["objectives"]]
    signs = np.array([1.0 if o["minimise"] else -1.0 for o in summary["objectives"]])
    return np.array([[float(r[c]) if r[c] else np.nan for c in columns] for r in rows]).reshape(-1, len(columns)) \
        * signs
