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

from hwnas.controller.errors import SettingError
from hwnas.controller.spaces import SearchSpace

PENALTY = 1e12  # objective value of an encoding that is not a network: dominated by everything


def integer_operators(crossover: float, mutation: float) -> dict:
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair

    return {"crossover": SBX(prob=crossover, eta=15, vtype=float, repair=RoundingRepair()),
            "mutation": PM(prob=1.0, prob_var=mutation, eta=20, vtype=float, repair=RoundingRepair())}


def space_operators(space: SearchSpace, crossover: float) -> tuple[dict, object, object]:
    """(crossover and mutation, sampling, repair) for a space that varies its own encodings
    (``variation == "space"``): pymoo operators that call the space's ``crossover``, ``mutate``, ``sample``
    and ``repair``, so every individual the algorithm makes is an encoding of the search."""
    from pymoo.core.crossover import Crossover
    from pymoo.core.mutation import Mutation
    from pymoo.core.repair import Repair
    from pymoo.core.sampling import Sampling

    low, high = space.bounds()

    def rows(X: np.ndarray) -> list[list[int]]:
        return np.clip(np.round(X), low, high).astype(np.int64).tolist()

    class SpaceRepair(Repair):
        def _do(self, problem, X, **kwargs):
            return np.array([space.repair(x) for x in rows(X)], dtype=np.int64)

    class SpaceSampling(Sampling):
        def _do(self, problem, n_samples, *args, random_state=None, **kwargs):
            return np.array([space.sample(random_state) for _ in range(n_samples)], dtype=np.int64)

    class SpaceCrossover(Crossover):
        def __init__(self) -> None:
            super().__init__(2, 2, prob=crossover)

        def _do(self, problem, X, *args, random_state=None, **kwargs):
            out = np.empty_like(X, dtype=np.int64)
            for k, (a, b) in enumerate(zip(rows(X[0]), rows(X[1]), strict=True)):
                out[0, k], out[1, k] = space.crossover(a, b, random_state)
            return out

    class SpaceMutation(Mutation):
        def _do(self, problem, X, *args, random_state=None, **kwargs):
            return np.array([space.mutate(x, random_state) for x in rows(X)], dtype=np.int64)

    return {"crossover": SpaceCrossover(), "mutation": SpaceMutation()}, SpaceSampling(), SpaceRepair()


def exact_duplicates():
    """pymoo's duplicate elimination for integer encodings: a row equal to an earlier row of the offspring, or
    to any row of the populations given, is a duplicate. pymoo's default computes Euclidean distances
    (scipy's cdist) and calls a distance <= 1e-16 a duplicate, the same rows on integers; NSGA-II re-mates
    until its offspring are new, a dozen rounds a generation on NB-201, so the comparison is done as one
    numpy equality instead."""
    from pymoo.core.duplicate import DuplicateElimination

    def rows(pop) -> np.ndarray:  # pop.get("X"), without its per-individual attribute lookups
        return np.array([individual.X for individual in pop], dtype=np.float64)

    class ExactDuplicates(DuplicateElimination):
        def _do(self, pop, other, is_duplicate):
            X = rows(pop)
            if other is None:
                equal = (X[:, None, :] == X[None, :, :]).all(axis=2)
                is_duplicate |= np.tril(equal, k=-1).any(axis=1)
            else:
                Y = rows(other)
                is_duplicate |= (X[:, None, :] == Y[None, :, :]).all(axis=2).any(axis=1)
            return is_duplicate

    return ExactDuplicates()


def reference_directions(n_obj: int, partitions: int = 20) -> np.ndarray:
    from pymoo.util.ref_dirs import get_reference_directions

    return get_reference_directions("energy", n_obj, comb(partitions + n_obj - 1, n_obj - 1), seed=1)


def _nsga2(pop: int, n_obj: int, ops: dict, sampling):
    from pymoo.algorithms.moo.nsga2 import NSGA2

    return NSGA2(pop_size=pop, sampling=sampling, eliminate_duplicates=exact_duplicates(), **ops)


def _agemoea(pop: int, n_obj: int, ops: dict, sampling):
    from pymoo.algorithms.moo.age import AGEMOEA

    return AGEMOEA(pop_size=pop, sampling=sampling, eliminate_duplicates=exact_duplicates(), **ops)


def _unsga3(pop: int, n_obj: int, ops: dict, sampling):
    from pymoo.algorithms.moo.unsga3 import UNSGA3

    return UNSGA3(reference_directions(n_obj), pop_size=pop, sampling=sampling,
                  eliminate_duplicates=exact_duplicates(), **ops)


def _ctaea(pop: int, n_obj: int, ops: dict, sampling):
    from pymoo.algorithms.moo.ctaea import CTAEA

    return CTAEA(reference_directions(n_obj), sampling=sampling, eliminate_duplicates=exact_duplicates(), **ops)


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


def inner_algorithm(name: str, pop: int, n_obj: int, crossover: float, mutation: float, sampling=None,
                    space: SearchSpace | None = None, mating_rounds: int = 100):
    """A pymoo algorithm by name; ``sampling`` is an initial population (array) or None for random. A
    ``space`` that varies its own encodings gets its operators (``mutation``, a rate per integer, is then
    the space's own: one stage per child for AutoBuild-NAS). ``mating_rounds``: how often a generation
    mates again while its offspring are duplicates (pymoo's default, 100), before it goes on with fewer."""
    from pymoo.operators.sampling.rnd import IntegerRandomSampling

    check_inner(name, n_obj)
    if space is not None and space.variation == "space":
        ops, random_sampling, repair = space_operators(space, crossover)
        ops = {**ops, "repair": repair}
    else:
        ops, random_sampling = integer_operators(crossover, mutation), IntegerRandomSampling()
    algorithm = INNER[name](pop, n_obj, ops, random_sampling if sampling is None else sampling)
    if getattr(algorithm, "mating", None) is not None:  # MOEA/D and C-TAEA mate by neighbourhoods of their own
        algorithm.mating.n_max_iterations = mating_rounds
    return algorithm


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
