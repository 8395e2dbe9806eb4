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
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from hwnas.controller.errors import SettingError
from hwnas.controller.learning.data import space_samples
from hwnas.controller.search.evaluator import Evaluation, Evaluator
from hwnas.controller.search.problem import Ask, SearchAlgorithm, SearchProblem, Steps
from hwnas.predictors import OutsideDomainWarning, Predictor, get_predictor

MAX_CANDIDATES = 200_000  # BRP-NAS ranks every architecture of the space


@dataclass
class BrpNas(SearchAlgorithm):
    """BRP-NAS's settings: the latency limit, I (``iterations``), alpha, the device's latency predictor that
    filters the candidates (None: no filter) and the binary relation predictor's epochs (None: its default)."""

    name: ClassVar[str] = "brpnas"
    latency_max_ms: float | None = None
    iterations: int = 5
    alpha: float = 0.5
    latency_predictor: Predictor | None = field(default=None, metadata={"recorded": False})
    brp_epochs: int | None = None

    def check(self) -> None:
        super().check()
        if self.latency_max_ms is None or self.latency_max_ms <= 0:
            raise SettingError("latency_max_ms", "is required (> 0): brpnas searches within a latency limit")
        if not 0 <= self.alpha <= 1:
            raise SettingError("alpha", f"must be in [0, 1], got {self.alpha}")
        if self.iterations < 1:
            raise SettingError("iterations", f"must be >= 1, got {self.iterations}")

    def check_objectives(self, names: Sequence[str]) -> None:
        if "accuracy" not in names:
            raise SettingError("objectives", "must include accuracy: brpnas searches for accuracy")

    def candidates(self, problem: SearchProblem) -> list[list[int]]:
        space = problem.space
        if space.size() > MAX_CANDIDATES:
            raise ValueError(f"brpnas ranks every architecture of the space; {space.name} has "
                             f"{space.size():.3g} (use nb201)")
        pool = [x for x in space.enumerate() if space.has_network(x)]
        if self.latency_predictor is not None:
            latency = self.latency_predictor.predict(space_samples(space, pool))
            pool = [x for x, ms in zip(pool, latency, strict=True) if ms <= self.latency_max_ms]
            problem.note(f"{len(pool)} candidates predicted within {self.latency_max_ms:g} ms")
        if not pool:
            raise ValueError(f"no candidate is predicted to meet the latency limit of {self.latency_max_ms:g} ms")
        return pool

    def train_brp(self, problem: SearchProblem) -> Predictor:
        done = problem.evaluator.successful()
        y = np.array([e.values["accuracy"] for e in done])
        config = {"seed": problem.seed, **({"epochs": self.brp_epochs} if self.brp_epochs else {})}
        return get_predictor("brp", **config).fit(space_samples(problem.space, [e.encoding for e in done], y))

    def steps(self, problem: SearchProblem) -> Steps:
        self.check_objectives(problem.evaluator.names)
        evaluator, space, rng = problem.evaluator, problem.space, problem.rng
        pool = self.candidates(problem)
        iterations = max(1, min(self.iterations, evaluator.budget))
        per_iteration = math.ceil(evaluator.budget / iterations)
        ranked = [pool[k] for k in rng.permutation(len(pool))]  # no predictor yet: a random order
        for i in range(1, iterations + 1):
            n = min(per_iteration, evaluator.remaining)
            if n <= 0:
                break
            fresh, networks = [], set()  # one encoding per network not yet evaluated, in rank order
            for x in ranked:
                key = space.network_key(x)
                if key not in networks and not evaluator.seen(x):
                    networks.add(key)
                    fresh.append(x)
            top = fresh[:round(self.alpha * n)] if i > 1 else []
            window = [x for x in fresh[:max(n, len(ranked) // 2 ** i)] if x not in top]
            ordered = top + [window[k] for k in rng.permutation(len(window))]  # the rest: stand-ins for repeats
            yield Ask(ordered, i, want=n)
            if evaluator.remaining > 0 and i < iterations:
                with warnings.catch_warnings():  # ranking the whole space beyond what was evaluated: by design
                    warnings.simplefilter("ignore", OutsideDomainWarning)
                    scores = self.train_brp(problem).predict(space_samples(space, pool))
                ranked = [pool[k] for k in np.argsort(-scores, kind="stable")]
        best = self.best(evaluator)
        problem.note(f"best within {self.latency_max_ms:g} ms: "
                     + (f"{best.arch} ({best.values})" if best else "none found"))

    def best(self, evaluator: Evaluator) -> Evaluation | None:
        """The most accurate evaluated architecture whose measured latency meets the limit, or None."""
        feasible = [e for e in evaluator.successful() if e.values.get("latency", 0.0) <= self.latency_max_ms]
        return max(feasible, key=lambda e: e.values["accuracy"], default=None)
