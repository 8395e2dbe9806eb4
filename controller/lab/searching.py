"""A search from Python (``Lab.search``): ``hwnas search``'s run, measured by the lab's open fleet."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hwnas.controller.errors import SettingError, UserError
from hwnas.controller.lab.handles import SearchResult
from hwnas.protos import names


@dataclass
class PreparedSearch:
    """Everything a run needs but the fleet, checked before any job is queued."""

    config: Any  # search.run.SearchConfig
    algorithm: Any
    space: Any
    objectives: list
    accuracy: Any
    plan: Any  # fleet.campaign.CampaignPlan, or None when nothing is measured
    out: Path

    def run(self, fleet) -> SearchResult:
        import pandas as pd

        from hwnas.controller.search.evaluator import Evaluator
        from hwnas.controller.search.measure import FleetMeasurer
        from hwnas.controller.search.run import SearchRun

        measurer = FleetMeasurer(fleet, self.plan) if self.plan is not None else None
        run = SearchRun(self.config, self.algorithm,
                        lambda on_evaluated: Evaluator(self.space, self.objectives, self.config.evals, measurer,
                                                       self.accuracy, on_evaluated),
                        self.out, self.space, note=lambda text: None)
        run.run()
        return SearchResult(front=pd.read_csv(self.out / "pareto.csv"),
                            hypervolume=run.hv.values[-1] if run.hv.values else 0.0,
                            hypervolumes=list(run.hv.values), evaluations=len(run.evaluator.history), out=self.out)


def space_named(name: str):
    """The registered search space ``name``; ``UserError`` naming the known ones."""
    from hwnas.controller.spaces import get_space

    try:
        return get_space(name)
    except ValueError as exc:
        raise UserError("space", f"{name!r} is not known: {exc}") from None


def prepare_search(device: str, space: str, objectives: Sequence[str], algo: str, evals: int, seed: int,
                   out: str | Path | None, accuracy: str | None, backend: str, protocol: str,
                   params: Mapping[str, float], settings: Mapping[str, Any], submitted_by: str) -> PreparedSearch:
    """The run ``hwnas search`` would make of the same settings; ``UserError`` naming the one that is wrong."""
    from hwnas.controller.fleet.campaign import CampaignPlan
    from hwnas.controller.search.algorithms import make_algorithm, setting_names
    from hwnas.controller.search.objectives import PredictorAccuracy, accuracy_evaluator, get_objectives
    from hwnas.controller.search.run import SearchConfig

    if evals < 1:
        raise UserError("evals", f"must be >= 1, got {evals}")
    searched = space_named(space)
    try:
        chosen = get_objectives(list(objectives))
        wanted = [o.name for o in chosen]
        spec = accuracy or searched.accuracy_table
        judge = accuracy_evaluator(spec, searched) if "accuracy" in wanted else None
        unknown = sorted(set(settings) - set(setting_names(algo)))
        if unknown:
            raise SettingError("settings", f"{unknown} are not settings of {algo}; its settings: "
                                           f"{setting_names(algo)}")
        ready = {"fixed_predictors": {"accuracy": judge}} if isinstance(judge, PredictorAccuracy) else {}
        algorithm = make_algorithm(algo, {**ready, **settings})
        algorithm.check_objectives(wanted)
    except SettingError:
        raise
    except ValueError as exc:
        raise UserError("search", str(exc)) from None
    folder = Path(out) if out is not None else Path("runs") / f"{searched.name}-{device}-{algo}-s{seed}"
    measured = any(o.source == "measured" for o in chosen)
    plan = CampaignPlan(campaign=names.label_from(f"search:{folder.name}"), device_keys=[device], backend=backend,
                        protocol=protocol, protocol_params=params, priority=100,
                        submitted_by=submitted_by) if measured else None
    config = SearchConfig(searched.name, device, wanted, algo, evals, seed, spec)
    return PreparedSearch(config, algorithm, searched, chosen, judge, plan, folder)
