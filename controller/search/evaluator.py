"""The one door every search algorithm evaluates through: budget, cache, objectives, history.

An *evaluation* is one distinct architecture (by canonical encoding) whose objectives were obtained —
measured on the device for latency/energy/power, computed from the CG or looked up for the rest. Asking
again for an architecture already evaluated costs nothing; an architecture without a network (NB-201's
unconnected cells) is never evaluated. The budget counts evaluations, the figure LINAS is judged by.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from controller.graph import ComputationGraph
from controller.objectives import AccuracyFn, Candidate, Objective, evaluate_static
from controller.search.measure import Outcome, value_of
from controller.spaces import SearchSpace


class Measurer(Protocol):
    def measure(self, items: Sequence[tuple[str, str, ComputationGraph]]) -> list[Outcome]: ...


@dataclass
class Evaluation:
    index: int  # 1-based order of evaluation within the run
    iteration: int
    encoding: tuple[int, ...]
    arch: str
    arch_id: str
    values: dict[str, float] = field(default_factory=dict)  # natural units, by objective name
    error: str = ""  # why the architecture has no values (a measurement failed permanently)

    @property
    def ok(self) -> bool:
        return not self.error


class Evaluator:
    def __init__(self, space: SearchSpace, objectives: Sequence[Objective], budget: int,
                 measurer: Measurer | None, accuracy: AccuracyFn | None,
                 on_evaluated: Callable[[list[Evaluation]], None] = lambda batch: None) -> None:
        if budget < 1:
            raise ValueError(f"--evals must be >= 1, got {budget}")
        if measurer is None and any(o.source == "measured" for o in objectives):
            raise ValueError("measured objectives need agents to measure on")
        self.space, self.objectives, self.budget = space, list(objectives), budget
        self.measurer, self.accuracy, self.on_evaluated = measurer, accuracy, on_evaluated
        self.history: list[Evaluation] = []
        self._by_encoding: dict[tuple[int, ...], Evaluation] = {}
        self.iteration = 0

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.objectives]

    @property
    def signs(self) -> np.ndarray:
        return np.array([o.sign for o in self.objectives])

    @property
    def remaining(self) -> int:
        return self.budget - len(self.history)

    def seen(self, x: Sequence[int]) -> bool:
        return tuple(self.space.canonical(x)) in self._by_encoding

    def evaluate(self, encodings: Sequence[Sequence[int]]) -> list[Evaluation | None]:
        """Each architecture's evaluation; None where it has no network or the budget ran out first."""
        wanted = [tuple(self.space.canonical(x)) if self.space.has_network(x) else None for x in encodings]
        new: list[tuple[int, ...]] = []
        for x in wanted:
            if x is not None and x not in self._by_encoding and x not in new and len(new) < self.remaining:
                new.append(x)
        if new:
            self._evaluate_new(new)
        return [self._by_encoding.get(x) if x is not None else None for x in wanted]

    def _evaluate_new(self, encodings: list[tuple[int, ...]]) -> None:
        graphs = [self.space.to_graph(x) for x in encodings]
        candidates = [Candidate(self.space.name, x, self.space.to_string(x), g) for x, g in zip(encodings, graphs,
                                                                                             strict=True)]
        static = evaluate_static(self.objectives, candidates, self.accuracy)
        measured = self.measurer.measure([(c.arch, " ".join(map(str, c.encoding)), c.graph)
                                          for c in candidates]) if self.measurer else []
        batch = []
        for k, c in enumerate(candidates):
            values = {name: float(v[k]) for name, v in static.items()}
            error = ""
            if measured:
                for o in self.objectives:
                    if o.source == "measured":
                        value, why = value_of(measured[k], o.record_field, o.column)
                        if value is None:
                            error = error or why
                        else:
                            values[o.name] = value
            evaluation = Evaluation(len(self.history) + 1, self.iteration, c.encoding, c.arch, c.graph.arch_id,
                                    values if not error else {}, error)
            self.history.append(evaluation)
            self._by_encoding[c.encoding] = evaluation
            batch.append(evaluation)
        self.on_evaluated(batch)

    def minimised(self, evaluations: Sequence[Evaluation]) -> np.ndarray:
        """(n, m) objective values in minimisation form."""
        return np.array([[e.values[n] for n in self.names] for e in evaluations], dtype=np.float64
                        ).reshape(len(evaluations), len(self.names)) * self.signs

    def successful(self) -> list[Evaluation]:
        return [e for e in self.history if e.ok]
