"""Search algorithms, looked up by name; each spends the evaluator's budget its own way.

- ``random``: uniform samples of the space, a population at a time (the reference);
- ``nsga2``: NSGA-II on measurements only ("validation only" in LINAS's terms);
- ``linas``: measure, retrain predictors, search them for long, measure the best unique candidates;
- ``brpnas``: latency-constrained accuracy search with a binary relation predictor and iterative data
  selection.

Every algorithm starts from the same seeded random first population, so runs of one seed share it and
their hypervolume bounds.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from controller.search.evaluator import Evaluator
from controller.search.evolution import PENALTY, inner_algorithm
from controller.spaces import SearchSpace
from predictors import Predictor, Samples


class Predicts(Protocol):
    """All LINAS's inner search asks of a predictor."""

    def predict(self, samples: Samples) -> np.ndarray: ...


STALE_GENERATIONS = 50  # NSGA-II generations without a new architecture before it stops early


@dataclass
class SearchContext:
    space: SearchSpace
    evaluator: Evaluator
    population: int = 50
    seed: int = 0
    crossover: float = 0.9
    mutation: float = 0.02
    inner: str = "nsga2"  # LINAS: the pymoo algorithm run on the predictors
    inner_evals: int = 20_000  # LINAS: predictor evaluations per iteration (J)
    predictors: dict[str, str] = field(default_factory=dict)  # LINAS: objective -> predictor kind
    # LINAS: objective -> an already fitted predictor used as is, never retrained (a lab's own accuracy
    # predictor; the perfect-predictor ablation of benchmarks/linas_ablation.py)
    fixed_predictors: dict[str, Predicts] = field(default_factory=dict)
    note: Callable[[str], None] = lambda text: None  # progress lines
    predicted_front: list[tuple[tuple[int, ...], list[float]]] = field(default_factory=list)
    iteration_seconds: list[float] = field(default_factory=list)  # LINAS: controller time per iteration
    latency_max_ms: float | None = None  # BRP-NAS: the latency limit
    latency_predictor: Predictor | None = None  # BRP-NAS: the device's, to drop candidates predicted too slow
    iterations: int = 5  # BRP-NAS: I
    alpha: float = 0.5  # BRP-NAS: share of each iteration taken from the top of the ranking
    brp_config: dict = field(default_factory=dict)  # BRP-NAS: binary relation predictor settings

    def __post_init__(self) -> None:
        if self.population < 2:
            raise ValueError(f"--population must be >= 2, got {self.population}")
        unknown = sorted(set(self.fixed_predictors) - set(self.evaluator.names))
        if unknown:
            raise ValueError(f"fixed predictors for {', '.join(unknown)}, which the search does not optimise "
                             f"(its objectives: {', '.join(self.evaluator.names)})")
        self.rng = np.random.default_rng(self.seed)


def sample_new(ctx: SearchContext, n: int, exclude: set[tuple[int, ...]] = frozenset()) -> list[list[int]]:
    """Up to ``n`` random architectures with a network, of distinct networks none evaluated or excluded yet
    (``exclude``: network keys)."""
    out: list[list[int]] = []
    chosen = set(exclude)
    for _ in range(max(100 * n, 1000)):
        if len(out) >= n:
            break
        x = ctx.space.sample(ctx.rng)
        if not ctx.space.has_network(x):
            continue
        key = ctx.space.network_key(x)
        if key in chosen or ctx.evaluator.seen(x):
            continue
        chosen.add(key)
        out.append(x)
    return out


def evaluate_n(ctx: SearchContext, ordered: Sequence[Sequence[int]], n: int) -> int:
    """Evaluate candidates in order until ``n`` new networks are evaluated or ``ordered`` runs out.

    A candidate whose CG equals one already evaluated costs nothing (the evaluator hands back that
    evaluation), so the next ones in order take its place in the same iteration. Returns how many were new.
    """
    done, start = 0, 0
    while done < n and start < len(ordered) and ctx.evaluator.remaining > 0:
        chunk = list(ordered[start:start + n - done])
        start += len(chunk)
        before = len(ctx.evaluator.history)
        ctx.evaluator.evaluate(chunk)
        done += len(ctx.evaluator.history) - before
    return done


def first_population(ctx: SearchContext) -> list[list[int]]:
    return sample_new(ctx, min(ctx.population, ctx.evaluator.remaining))


def minimised_or_penalty(ctx: SearchContext, encodings: np.ndarray) -> np.ndarray:
    """Objective rows (minimisation form) of evaluated architectures; PENALTY rows for the rest."""
    evaluations = ctx.evaluator.evaluate(encodings.tolist())
    F = np.full((len(encodings), len(ctx.evaluator.objectives)), PENALTY)
    for k, e in enumerate(evaluations):
        if e is not None and e.ok:
            F[k] = ctx.evaluator.minimised([e])[0]
    return F


def random_search(ctx: SearchContext) -> None:
    batch = first_population(ctx)
    while batch:
        ctx.evaluator.evaluate(batch)
        ctx.evaluator.iteration += 1
        batch = sample_new(ctx, min(ctx.population, ctx.evaluator.remaining))


def nsga2_search(ctx: SearchContext) -> None:
    """NSGA-II whose every fitness is a measurement (pymoo ask and tell)."""
    from pymoo.core.problem import Problem
    from pymoo.core.termination import NoTermination

    first = np.array(first_population(ctx), dtype=np.int64)
    low, high = ctx.space.bounds()
    algorithm = inner_algorithm("nsga2", len(first), len(ctx.evaluator.objectives), ctx.crossover, ctx.mutation,
                                sampling=first)
    problem = Problem(n_var=ctx.space.n_var, n_obj=len(ctx.evaluator.objectives), xl=low, xu=high, vtype=int)
    algorithm.setup(problem, termination=NoTermination(), seed=ctx.seed, verbose=False)
    stale = 0
    while ctx.evaluator.remaining > 0 and stale < STALE_GENERATIONS:
        population = algorithm.ask()
        before = len(ctx.evaluator.history)
        population.set("F", minimised_or_penalty(ctx, np.round(population.get("X")).astype(np.int64)))
        algorithm.tell(infills=population)
        ctx.evaluator.iteration += 1
        stale = stale + 1 if len(ctx.evaluator.history) == before else 0
    if stale >= STALE_GENERATIONS:
        ctx.note(f"NSGA-II produced no new architecture for {STALE_GENERATIONS} generations; stopped early")


# name -> "module:function". LINAS and BRP-NAS build on this module's helpers, so they are named, not
# imported: the registry resolves them on first use and no import runs back from here to them.
ALGORITHMS: dict[str, str] = {
    "brpnas": "controller.search.brpnas:run_brpnas",
    "linas": "controller.search.linas:run_linas",
    "nsga2": f"{__name__}:nsga2_search",
    "random": f"{__name__}:random_search",
}


def get_algorithm(name: str) -> Callable[[SearchContext], None]:
    try:
        target = ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"--algo {name!r} is not known; known: {', '.join(ALGORITHMS)}") from None
    module_name, _, function = target.partition(":")
    return getattr(importlib.import_module(module_name), function)
