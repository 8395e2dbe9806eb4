"""LINAS (Cummings et al., "A Hardware-Aware Framework for Accelerating NAS Across Modalities"), Algorithm 1.

1. Evaluate a random first population of size P on the device.
2. Each iteration: retrain one predictor per objective on everything evaluated so far; run the inner pymoo
   algorithm on the predictors for J predictor evaluations (default 20,000); from every architecture the
   inner search visited, take the best unique ones not yet evaluated — non-dominated fronts in turn,
   the most isolated first within a front (crowding distance) — as the next population; evaluate it.
3. Stop when the evaluation budget is spent.

Only steps that touch the device cost evaluations; ``SearchContext.iteration_seconds`` records the
controller's own time per iteration (training plus the inner search), which the benchmark reports.
"""

from __future__ import annotations

import time

import numpy as np

from controller.learning.data import space_samples
from controller.search.algorithms import Predicts, SearchContext, evaluate_n, sample_new
from controller.search.evolution import PENALTY, inner_algorithm, integer_problem
from controller.search.hypervolume import pareto_mask
from predictors import get_predictor, predictor_class

DEFAULT_PREDICTOR = "ridge"  # LINAS Table 5 (MobileNetV3, ResNet50): ridge for accuracy and latency


SPARE_SHARE = 10  # a tenth more candidates than a population, in case some repeat an evaluated network


def train_predictors(ctx: SearchContext) -> list[Predicts]:
    """One predictor per objective on every successful evaluation; each regresses its natural value.
    An objective with a fixed predictor keeps it."""
    done = ctx.evaluator.successful()
    samples = space_samples(ctx.space, [e.encoding for e in done])
    models: list[Predicts] = []
    for objective in ctx.evaluator.objectives:
        if objective.name in ctx.fixed_predictors:
            models.append(ctx.fixed_predictors[objective.name])
            continue
        kind = ctx.predictors.get(objective.name, DEFAULT_PREDICTOR)
        config = {"seed": ctx.seed} if "seed" in predictor_class(kind).defaults() else {}
        y = np.array([e.values[objective.name] for e in done])
        models.append(get_predictor(kind, **config).fit(samples.with_y(y)))
    return models


def predicted_search(ctx: SearchContext, models: list[Predicts]) -> dict[tuple[int, ...], np.ndarray]:
    """Run the inner algorithm on the predictors; every architecture it visited with its predicted
    objectives (minimisation form)."""
    from pymoo.optimize import minimize

    signs = ctx.evaluator.signs
    archive: dict[tuple[int, ...], np.ndarray] = {}

    def evaluate(X: np.ndarray) -> np.ndarray:
        F = np.full((len(X), len(models)), PENALTY)
        alive = np.array([ctx.space.has_network(x) for x in X.tolist()], dtype=bool)
        if alive.any():
            samples = space_samples(ctx.space, X[alive].tolist())
            F[alive] = np.column_stack([m.predict(samples) for m in models]) * signs
        for x, f, ok in zip(X.tolist(), F, alive, strict=True):
            if ok:
                archive[ctx.space.network_key(x)] = f  # one entry per network: twins are one candidate
        return F

    algorithm = inner_algorithm(ctx.inner, ctx.population, len(models), ctx.crossover, ctx.mutation)
    minimize(integer_problem(ctx.space, len(models), evaluate), algorithm, ("n_eval", ctx.inner_evals),
             seed=ctx.seed + ctx.evaluator.iteration, verbose=False)
    return archive


def best_unique(ctx: SearchContext, archive: dict[tuple[int, ...], np.ndarray], n: int) -> list[list[int]]:
    """The next population: fronts of the predicted objectives in turn, most isolated first, unseen only."""
    from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance
    from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

    keys = [x for x in archive if not ctx.evaluator.seen(x)]
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


def run_linas(ctx: SearchContext) -> None:
    n = min(ctx.population, ctx.evaluator.remaining)
    evaluate_n(ctx, sample_new(ctx, n + n // SPARE_SHARE + 1), n)
    while ctx.evaluator.remaining > 0:
        ctx.evaluator.iteration += 1
        started = time.perf_counter()
        models = train_predictors(ctx)
        archive = predicted_search(ctx, models)
        n = min(ctx.population, ctx.evaluator.remaining)
        wanted = n + n // SPARE_SHARE + 1  # spares stand in for picks whose CG was already evaluated
        picks = best_unique(ctx, archive, wanted)
        picks += sample_new(ctx, wanted - len(picks), exclude={ctx.space.network_key(p) for p in picks})
        ctx.iteration_seconds.append(time.perf_counter() - started)
        front_keys = list(archive)
        F = np.array([archive[x] for x in front_keys])
        ctx.predicted_front = [(front_keys[i], (F[i] * ctx.evaluator.signs).tolist())
                               for i in np.flatnonzero(pareto_mask(F))]
        ctx.note(f"iteration {ctx.evaluator.iteration}: predictors + {ctx.inner_evals} predicted evaluations in "
                 f"{ctx.iteration_seconds[-1]:.1f} s; measuring {min(n, len(picks))}")
        if not picks:
            ctx.note("the space has no architecture left to evaluate")
            return
        evaluate_n(ctx, picks, n)
