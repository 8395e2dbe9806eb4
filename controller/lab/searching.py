"""A search from Python (``Lab.search``) and from ``hwnas search``: one run, measured by the lab's open fleet."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.controller.errors import SettingError, UserError
from hwnas.controller.lab.handles import SearchResult
from hwnas.protos import names


@dataclass(frozen=True)
class JobShape:
    """How a search's measurements are made (``hwnas search``'s measurement flags)."""

    backend: str = "onnxruntime"
    model_format: str = ""
    protocol: str = "latbench"
    params: Mapping[str, float] | None = None
    batch_size: int = 1
    priority: int = 100  # ahead of LatBench builds sharing the key
    op_profile: bool = False
    memory: bool = False
    output_check: bool = False


@dataclass
class PreparedSearch:
    """Everything a run needs but the fleet, checked before any job is queued."""

    config: Any  # search.run.SearchConfig
    algorithm: Any
    space: Any
    objectives: list
    accuracy: Any
    bounds: Any  # search.hypervolume.HvSpace, or None: the first batch's range
    plan: Any  # fleet.campaign.CampaignPlan, or None when nothing is measured
    out: Path

    def run(self, fleet, note: Callable[[str], None] = lambda text: None,
            progress: Callable[[Any, float], None] = lambda evaluation, hv: None) -> SearchResult:
        """Run to the end of the budget on ``fleet`` (None when nothing is measured); the run's files in ``out``."""
        import pandas as pd

        from hwnas.controller.search.evaluator import Evaluator
        from hwnas.controller.search.measure import FleetMeasurer
        from hwnas.controller.search.run import SearchRun

        measurer = FleetMeasurer(fleet, self.plan) if self.plan is not None else None
        run = SearchRun(self.config, self.algorithm,
                        lambda on_evaluated: Evaluator(self.space, self.objectives, self.config.evals, measurer,
                                                       self.accuracy, on_evaluated),
                        self.out, self.space, self.bounds, note=note, progress=progress)
        run.run()
        return SearchResult(front=pd.read_csv(self.out / "pareto.csv"),
                            hypervolume=run.hv.values[-1] if run.hv.values else 0.0,
                            hypervolumes=list(run.hv.values), evaluations=len(run.evaluator.history), out=self.out,
                            failures=list(run.evaluator.failure_causes()))


@contextlib.contextmanager
def _naming(field: str) -> Iterator[None]:
    """A plain ValueError of the step inside becomes a ``UserError`` naming ``field`` (a UserError stays)."""
    try:
        yield
    except UserError:
        raise
    except (KeyError, ValueError) as exc:
        raise UserError(field, str(exc).strip("'\"")) from None


def space_named(name: str):
    """The registered search space ``name``; ``UserError`` naming the known ones."""
    from hwnas.controller.spaces import get_space

    try:
        return get_space(name)
    except ValueError as exc:
        raise UserError("space", f"{name!r} is not known: {exc}") from None


def prepare_search(device: str, space: Any, objectives: str | Sequence[str], algo: str, evals: int, seed: int,
                   out: str | Path | None, accuracy: str | None, shape: JobShape, settings: Mapping[str, Any],
                   submitted_by: str, hv_bounds: str = "", restrict: str = "") -> PreparedSearch:
    """The run ``hwnas search`` makes of the same settings; ``UserError`` naming the one that is wrong.

    ``space``: a name or a space object (the CLI's, confined by ``--restrict``); ``settings``: the algorithm's
    own, ready-made predictors included.
    """
    from hwnas.controller.fleet.campaign import CampaignPlan
    from hwnas.controller.search.algorithms import make_algorithm, setting_names
    from hwnas.controller.search.hypervolume import parse_bounds
    from hwnas.controller.search.objectives import PredictorAccuracy, accuracy_evaluator, get_objectives
    from hwnas.controller.search.run import SearchConfig

    if evals < 1:
        raise UserError("evals", f"must be >= 1, got {evals}")
    searched = space_named(space) if isinstance(space, str) else space
    chosen = get_objectives(objectives)
    wanted = [o.name for o in chosen]
    spec = accuracy or searched.accuracy_table
    with _naming("accuracy"):
        judge = accuracy_evaluator(spec, searched) if "accuracy" in wanted else None
    with _naming("hv_bounds"):
        bounds = parse_bounds(hv_bounds, wanted, [o.sign for o in chosen]) if hv_bounds else None
    with _naming("algo"):
        own = setting_names(algo)
    unknown = sorted(set(settings) - set(own))
    if unknown:
        raise SettingError("settings", f"{unknown} are not settings of {algo}; its settings: {own}")
    ready = {"fixed_predictors": {"accuracy": judge}} if isinstance(judge, PredictorAccuracy) else {}
    with _naming("settings"):
        algorithm = make_algorithm(algo, {**ready, **settings})
    algorithm.check_objectives(wanted)
    folder = Path(out) if out is not None else Path("runs") / f"{searched.name}-{device}-{algo}-s{seed}"
    measured = any(o.source == "measured" for o in chosen)
    plan = CampaignPlan(campaign=names.label_from(f"search:{folder.name}"), device_keys=[device],
                        backend=shape.backend, model_format=shape.model_format, protocol=shape.protocol,
                        protocol_params=dict(shape.params or {}), batch_size=shape.batch_size,
                        priority=shape.priority, op_profile=shape.op_profile, memory=shape.memory,
                        output_check=shape.output_check, submitted_by=submitted_by) if measured else None
    if plan is not None:
        from hwnas.controller.graph.model_formats import check_exportable

        check_exportable(plan.model_format)
    config = SearchConfig(searched.name, device, wanted, algo, evals, seed, spec, restrict)
    return PreparedSearch(config, algorithm, searched, chosen, judge, bounds, plan, folder)
