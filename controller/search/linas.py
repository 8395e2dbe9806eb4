"""LINAS (Cummings et al., "A Hardware-Aware Framework for Accelerating NAS Across Modalities"), Algorithm 1.

1. Evaluate a random first population of size P on the device.
2. Each iteration: retrain one predictor per objective on everything evaluated so far; run the inner pymoo
   algorithm on the predictors for J predictor evaluations (default 20,000); from every architecture the
   inner search visited, take the best unique ones not yet evaluated — non-dominated fronts in turn,
   the most isolated first within a front (crowding distance) — as the next population; evaluate it.
3. Stop when the evaluation budget is spent.

Only steps that touch the device cost evaluations; ``Linas.iteration_seconds`` records the
controller's own time per iteration (training plus the inner search), which the benchmark reports.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from hwnas.controller.errors import SettingError
from hwnas.controller.learning.data import space_samples
from hwnas.controller.search.baselines import check_evolution
from hwnas.controller.search.evolution import PENALTY, check_inner, inner_algorithm, integer_problem
from hwnas.controller.search.hypervolume import pareto_mask
from hwnas.controller.search.problem import Ask, Predicts, PredictsArchitectures, SearchAlgorithm, SearchProblem, Steps
from hwnas.predictors import OutsideDomainWarning, Samples, get_predictor, predictor_class
from hwnas.predictors.base import transfers

DEFAULT_PREDICTOR = "ridge"  # LINAS Table 5 (MobileNetV3, ResNet50): ridge for accuracy and latency


SPARE_SHARE = 10  # a tenth more candidates than a population, in case some repeat an evaluated network
# The inner search on the predictors converges within a few generations on small spaces (NB-201: 15,625
# cells); pymoo then mates again up to 100 times a generation looking for offspring not yet in the
# population (150 of 238 generations did, in a test's run). Going on after 10 with fewer offspring spends
# the inner budget on more generations instead.
INNER_MATING_ROUNDS = 10


def views_read(predictors: Iterable) -> set[str]:
    """The Samples views these predictors (classes or fitted ones) read: all the inner search builds."""
    return {view for predictor in predictors for view in predictor.needs}


def predict_all(models: Sequence[Predicts | PredictsArchitectures], space, encodings: list[list[int]]
                ) -> np.ndarray:
    """(N, objectives): a predictor of architectures reads the encodings, the others the space's predictor
    views (built once for all of them)."""
    samples = None
    columns = []
    for model in models:
        if isinstance(model, PredictsArchitectures):
            columns.append(model.predict_encodings(encodings))
            continue
        if samples is None:
            readers = [m for m in models if not isinstance(m, PredictsArchitectures)]
            samples = space_samples(space, encodings, views=views_read(readers))
        columns.append(model.predict(samples))
    return np.column_stack(columns)


@dataclass
class Linas(SearchAlgorithm):
    """LINAS's settings: P (``population``), J (``inner_evals``), the inner pymoo algorithm and its variation,
    and a predictor kind per objective (``predictors``; "*" for the rest; ridge by default).

    ``fixed_predictors`` (objective -> a fitted predictor used as is, never retrained): a lab's own accuracy
    predictor, or the perfect-predictor ablation of benchmarks/linas_ablation.py.
    ``sources`` (objective -> other devices' samples): what a transferring kind (``sources``) learns from
    before each retraining, so that a search on a new device starts from a predictor that is good from its
    first population (benchmarks/linas_ablation.py, variant "transfer").
    """

    name: ClassVar[str] = "linas"
    iterates: ClassVar[bool] = True
    population: int = 50
    crossover: float = 0.9
    mutation: float = 0.02
    inner: str = "nsga2"
    inner_evals: int = 20_000
    predictors: dict[str, str] = field(default_factory=dict)
    fixed_predictors: dict[str, PredictsArchitectures] = field(default_factory=dict, metadata={"recorded": False})
    sources: dict[str, Sequence[Samples]] = field(default_factory=dict, metadata={"recorded": False})

    def check(self) -> None:
        super().check()
        check_evolution(self.population, self.crossover, self.mutation)
        check_inner(self.inner, 2)
        if self.inner_evals < self.population:
            raise SettingError("inner_evals", f"must be >= population ({self.population}), got {self.inner_evals}")
        for kind in self.predictors.values():
            predictor_class(kind)

    def check_objectives(self, names: Sequence[str]) -> None:
        check_inner(self.inner, len(names))
        unknown = sorted(set(self.fixed_predictors) - set(names))
        if unknown:
            raise SettingError("fixed_predictors", f"name {', '.join(unknown)}, which the search does not optimise "
                                                   f"(its objectives: {', '.join(names)})")
        for name in names:
            if transfers(self.kind(name)) and name not in self.sources and name not in self.fixed_predictors:
                raise SettingError("predictors", f"{name}={self.kind(name)} learns from other devices' measurements, "
                                                 f"and none were given for {name}")

    def kind(self, objective: str) -> str:
        return self.predictors.get(objective, self.predictors.get("*", DEFAULT_PREDICTOR))

    def train_predictors(self, problem: SearchProblem) -> list[Predicts | PredictsArchitectures]:
        """One predictor per objective on every successful evaluation; each regresses its natural value.
        An objective with a fixed predictor keeps it."""
        done = problem.evaluator.successful()
        trained = [self.kind(o.name) for o in problem.evaluator.objectives if o.name not in self.fixed_predictors]
        samples = space_samples(problem.space, [e.encoding for e in done],
                                views=views_read(predictor_class(kind) for kind in trained))
        models: list[Predicts | PredictsArchitectures] = []
        for objective in problem.evaluator.objectives:
            if objective.name in self.fixed_predictors:
                models.append(self.fixed_predictors[objective.name])
                continue
            kind = self.kind(objective.name)
            config = {"seed": problem.seed} if "seed" in predictor_class(kind).defaults() else {}
            y = np.array([e.values[objective.name] for e in done])
            predictor = get_predictor(kind, **config)
            if transfers(kind):
                predictor.use_sources(self.sources[objective.name])
            models.append(predictor.fit(samples.with_y(y)))
        return models

    def predicted_search(self, problem: SearchProblem, models: list[Predicts | PredictsArchitectures],
                         iteration: int) -> dict[tuple[int, ...], np.ndarray]:
        """Run the inner algorithm on the predictors (seeded by the run's seed and the iteration); every
        architecture it visited with its predicted objectives (minimisation form)."""
        from pymoo.optimize import minimize

        space, signs = problem.space, problem.evaluator.signs
        archive: dict[tuple[int, ...], np.ndarray] = {}
        # encoding -> (objectives, network key or None): the inner search proposes the same encodings again
        # and again (NB-201 has 15,625), and the predictors do not change within one inner search
        known: dict[tuple[int, ...], tuple[np.ndarray, tuple[int, ...] | None]] = {}

        def learn(rows: list[tuple[int, ...]]) -> None:
            alive = [x for x in rows if space.has_network(x)]
            if alive:
                with warnings.catch_warnings():  # the inner search explores beyond what was measured: by design
                    warnings.simplefilter("ignore", OutsideDomainWarning)
                    F = predict_all(models, space, [list(x) for x in alive]) * signs
                known.update((x, (f, space.network_key(x))) for x, f in zip(alive, F, strict=True))
            dead = np.full(len(models), PENALTY)
            known.update((x, (dead, None)) for x in rows if x not in known)

        def evaluate(X: np.ndarray) -> np.ndarray:
            rows = [tuple(x) for x in X.tolist()]
            learn(list(dict.fromkeys(x for x in rows if x not in known)))
            F = np.empty((len(X), len(models)))
            for k, x in enumerate(rows):
                F[k], key = known[x]
                if key is not None:
                    archive[key] = F[k]  # one entry per network: twins are one candidate
            return F

        algorithm = inner_algorithm(self.inner, self.population, len(models), self.crossover, self.mutation,
                                    space=space, mating_rounds=INNER_MATING_ROUNDS)
        minimize(integer_problem(space, len(models), evaluate), algorithm, ("n_eval", self.inner_evals),
                 seed=problem.seed + iteration, verbose=False)
        return archive

    def steps(self, problem: SearchProblem) -> Steps:
        self.check_objectives(problem.evaluator.names)
        evaluator = problem.evaluator
        n = min(self.population, evaluator.remaining)
        yield Ask(problem.sample_new(n + n // SPARE_SHARE + 1), 0, want=n)
        iteration = 0
        while evaluator.remaining > 0:
            iteration += 1
            started = time.perf_counter()
            archive = self.predicted_search(problem, self.train_predictors(problem), iteration)
            n = min(self.population, evaluator.remaining)
            wanted = n + n // SPARE_SHARE + 1  # spares stand in for picks whose CG was already evaluated
            picks = best_unique(problem, archive, wanted)
            picks += problem.sample_new(wanted - len(picks),
                                        exclude={problem.space.network_key(p) for p in picks})
            self.iteration_seconds.append(time.perf_counter() - started)
            front_keys = list(archive)
            F = np.array([archive[x] for x in front_keys])
            self.predicted_front = [(front_keys[i], (F[i] * evaluator.signs).tolist())
                                    for i in np.flatnonzero(pareto_mask(F))]
            problem.note(f"iteration {iteration}: predictors + {self.inner_evals} predicted evaluations "
                         f"in {self.iteration_seconds[-1]:.1f} s; measuring {min(n, len(picks))}")
            if not picks:
                problem.note("the space has no architecture left to evaluate")
                return
            yield Ask(picks, iteration, want=n)


def best_unique(problem: SearchProblem, archive: dict[tuple[int, ...], np.ndarray], n: int) -> list[list[int]]:
    """The next population: fronts of the predicted objectives in turn, most isolated first, unseen only."""
    from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    keys = [x for x in archive if not problem.evaluator.seen(x)]
    if not keys:
        return []
    F = np.array([archive[x] for x in keys])
    picks: list[list[int]] = []
    for front in NonDominatedSorting().do(F, n_stop_if_ranked=n):
        order = np.argsort(-calc_crowding_distance(F[front])) if len(front) > 2 else np.arange(len(front))
        picks += [list(keys[i]) for i in front[order]]
        if len(picks) >= n:
            break
    return picks[:n]
