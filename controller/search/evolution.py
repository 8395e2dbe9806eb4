"""pymoo pieces shared by the searches: integer problems, operators, and the inner algorithms by name.

Settings follow LINAS Tables 4-5 (Blank and Deb's recommendations): population 50, SBX crossover 0.9,
polynomial mutation 0.02 per variable, Riesz s-energy reference directions of the size 20 Das-Dennis
partitions would give, MOEA/D with 20 neighbours and neighbour mating 0.9. Variables are integers:
real-valued SBX and PM followed by rounding, as pymoo's own integer examples do.
"""

from __future__ import annotations

from collections.abc import Callable
from math import comb

import numpy as np

from controller.errors import SettingError
from controller.spaces import SearchSpace

PENALTY = 1e12  # objective value of an encoding that is not a network: dominated by everything


def integer_operators(crossover: float, mutation: float) -> dict:
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair

    return {"crossover": SBX(prob=crossover, eta=15, vtype=float, repair=RoundingRepair()),
            "mutation": PM(prob=1.0, prob_var=mutation, eta=20, vtype=float, repair=RoundingRepair())}


def reference_directions(n_obj: int, partitions: int = 20) -> np.ndarray:
    from pymoo.util.ref_dirs import get_reference_directions

    return get_reference_directions("energy", n_obj, comb(partitions + n_obj - 1, n_obj - 1), seed=1)


def _nsga2(pop: int, n_obj: int, ops: dict, sampling):
    from pymoo.algorithms.moo.nsga2 import NSGA2

    return NSGA2(pop_size=pop, sampling=sampling, eliminate_duplicates=True, **ops)


def _agemoea(pop: int, n_obj: int, ops: dict, sampling):
    from pymoo.algorithms.moo.age import AGEMOEA

    return AGEMOEA(pop_size=pop, sampling=sampling, eliminate_duplicates=True, **ops)


def _unsga3(pop: int, n_obj: int, ops: dict, sampling):
    from pymoo.algorithms.moo.unsga3 import UNSGA3

    return UNSGA3(reference_directions(n_obj), pop_size=pop, sampling=sampling, eliminate_duplicates=True, **ops)


def _ctaea(pop: int, n_obj: int, ops: dict, sampling):
    from pymoo.algorithms.moo.ctaea import CTAEA

    return CTAEA(reference_directions(n_obj), sampling=sampling, eliminate_duplicates=True, **ops)


def _moead(pop: int, n_obj: int, ops: dict, sampling):
    from pymoo.algorithms.moo.moead import MOEAD

    return MOEAD(reference_directions(n_obj), n_neighbors=20, prob_neighbor_mating=0.9, sampling=sampling, **ops)


INNER: dict[str, Callable] = {"nsga2": _nsga2, "agemoea": _agemoea, "unsga3": _unsga3, "ctaea": _ctaea,
                              "moead": _moead}


def check_inner(name: str, n_obj: int) -> None:
    """SettingError naming ``inner`` unless the pymoo algorithm is known and handles ``n_obj`` objectives."""
    if name not in INNER:
        raise SettingError("inner", f"{name!r} is not known; known: {', '.join(INNER)}")
    if name in ("nsga2", "agemoea") and n_obj > 2:
        raise SettingError("inner", f"{name} handles two objectives; use unsga3, ctaea or moead for {n_obj}")


def inner_algorithm(name: str, pop: int, n_obj: int, crossover: float, mutation: float, sampling=None):
    """A pymoo algorithm by name; ``sampling`` is an initial population (array) or None for random."""
    from pymoo.operators.sampling.rnd import IntegerRandomSampling

    check_inner(name, n_obj)
    return INNER[name](pop, n_obj, integer_operators(crossover, mutation),
                       IntegerRandomSampling() if sampling is None else sampling)


def integer_problem(space: SearchSpace, n_obj: int, evaluate: Callable[[np.ndarray], np.ndarray]):
    """A pymoo problem over the space's integer encodings; ``evaluate`` maps (n, n_var) -> (n, n_obj)."""
    from pymoo.core.problem import Problem

    low, high = space.bounds()

    class SpaceProblem(Problem):
        def __init__(self) -> None:
            super().__init__(n_var=space.n_var, n_obj=n_obj, xl=low, xu=high, vtype=int)

        def _evaluate(self, x, out, *args, **kwargs) -> None:
            out["F"] = evaluate(np.asarray(np.round(x), dtype=np.int64))

    return SpaceProblem()
