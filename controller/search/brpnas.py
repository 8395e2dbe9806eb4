"""BRP-NAS search (Dudziak et al. 2020, S.M. Algorithm 1): latency-constrained accuracy search.

1. Candidates C: every architecture of the space (NB-201: the 15,284 connected cells), less those the
   device's latency predictor puts above ``--latency-max`` (when the device has a trained predictor).
2. For i = 1..I, spend T/I evaluations: the top alpha*T/I of C by the binary relation predictor (BRP, #5),
   plus (1 - alpha)*T/I drawn at random from the top |C|/2^i, none evaluated before (all random when
   i = 1, as there is no predictor yet). Retrain the BRP on every accuracy obtained so far and re-rank C.
3. The best model is the most accurate evaluated one whose *measured* latency is within the limit.

Evaluations measure latency on the device and obtain accuracy, as every search here does; the budget T
is ``--evals``.
"""

from __future__ import annotations

import math

import numpy as np

from controller.learning.data import space_samples
from controller.search.algorithms import SearchContext, evaluate_n
from predictors import Predictor, get_predictor


def candidates(ctx: SearchContext) -> list[list[int]]:
    if ctx.space.size() > 200_000:
        raise ValueError(f"brpnas ranks every architecture of the space; {ctx.space.name} has "
                         f"{ctx.space.size():.3g} (use nb201)")
    pool = [x for x in ctx.space.enumerate() if ctx.space.has_network(x)]
    if ctx.latency_predictor is not None and ctx.latency_max_ms is not None:
        latency = ctx.latency_predictor.predict(space_samples(ctx.space, pool))
        pool = [x for x, ms in zip(pool, latency, strict=True) if ms <= ctx.latency_max_ms]
        ctx.note(f"{len(pool)} candidates predicted within {ctx.latency_max_ms:g} ms")
    if not pool:
        raise ValueError("no candidate is predicted to meet --latency-max")
    return pool


def train_brp(ctx: SearchContext) -> Predictor:
    done = ctx.evaluator.successful()
    y = np.array([e.values["accuracy"] for e in done])
    config = {"seed": ctx.seed, **ctx.brp_config}
    return get_predictor("brp", **config).fit(space_samples(ctx.space, [e.encoding for e in done], y))


def run_brpnas(ctx: SearchContext) -> None:
    if "accuracy" not in ctx.evaluator.names:
        raise ValueError("brpnas searches for accuracy: --objectives must include accuracy")
    pool = candidates(ctx)
    iterations = max(1, min(ctx.iterations, ctx.evaluator.budget))
    per_iteration = math.ceil(ctx.evaluator.budget / iterations)
    ranked = [pool[k] for k in ctx.rng.permutation(len(pool))]  # no predictor yet: a random order
    for i in range(1, iterations + 1):
        n = min(per_iteration, ctx.evaluator.remaining)
        if n <= 0:
            break
        fresh, networks = [], set()  # one encoding per network not yet evaluated, in rank order
        for x in ranked:
            key = ctx.space.network_key(x)
            if key not in networks and not ctx.evaluator.seen(x):
                networks.add(key)
                fresh.append(x)
        top = fresh[:round(ctx.alpha * n)] if i > 1 else []
        window = [x for x in fresh[:max(n, len(ranked) // 2 ** i)] if x not in top]
        ordered = top + [window[k] for k in ctx.rng.permutation(len(window))]  # the rest: stand-ins for repeats
        ctx.evaluator.iteration = i
        evaluate_n(ctx, ordered, n)
        if ctx.evaluator.remaining > 0 and i < iterations:
            scores = train_brp(ctx).predict(space_samples(ctx.space, pool))
            ranked = [pool[k] for k in np.argsort(-scores, kind="stable")]
    best = best_within(ctx)
    ctx.note(f"best within {ctx.latency_max_ms:g} ms: " + (f"{best.arch} ({best.values})" if best else "none found"))


def best_within(ctx: SearchContext):
    """The most accurate evaluated architecture whose measured latency meets the limit, or None."""
    feasible = [e for e in ctx.evaluator.successful()
                if ctx.latency_max_ms is None or e.values.get("latency", 0.0) <= ctx.latency_max_ms]
    return max(feasible, key=lambda e: e.values["accuracy"], default=None)
