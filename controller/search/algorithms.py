"""Search algorithms, looked up by name; each owns its settings and spends the evaluator's budget its own way.

- ``random``: uniform samples of the space, a population at a time (the reference);
- ``nsga2``: NSGA-II on measurements only ("validation only" in LINAS's terms);
- ``linas``: measure, retrain predictors, search them for long, measure the best unique candidates;
- ``brpnas``: latency-constrained accuracy search with a binary relation predictor and iterative data
  selection.

Every algorithm starts from the same seeded random first population, so runs of one seed share it and
their hypervolume bounds. Adding one is adding a module with a ``SearchAlgorithm`` dataclass and a line here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from hwnas.controller.search.baselines import Nsga2Search, RandomSearch
from hwnas.controller.search.brpnas import BrpNas
from hwnas.controller.search.linas import Linas
from hwnas.controller.search.problem import SearchAlgorithm

ALGORITHMS: dict[str, type[SearchAlgorithm]] = {cls.name: cls for cls in (BrpNas, Linas, Nsga2Search, RandomSearch)}


def algorithm_class(name: str) -> type[SearchAlgorithm]:
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"algorithm {name!r} is not known; known: {', '.join(ALGORITHMS)}") from None


def setting_names(name: str) -> list[str]:
    """The settings the algorithm's constructor takes."""
    return [f.name for f in dataclasses.fields(algorithm_class(name))]  # type: ignore[arg-type]


def make_algorithm(name: str, settings: Mapping[str, Any]) -> SearchAlgorithm:
    """The algorithm with those of ``settings`` it takes (the others belong to other algorithms)."""
    own = set(setting_names(name))
    return algorithm_class(name)(**{k: v for k, v in settings.items() if k in own})
