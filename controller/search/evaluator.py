"""The one door every search algorithm evaluates through: budget, cache, objectives, history.

An *evaluation* is one distinct network (by the space's ``network_key``, NB-201 twins collapsed) whose
objectives were obtained — measured on the device for latency/energy/power, computed from the CG or looked
up for the rest. Asking again for a network already evaluated, under any of its encodings, costs nothing;
an architecture without a network (NB-201's unconnected cells) is never evaluated. The budget counts
evaluations, the figure LINAS is judged by, so it is spent on distinct networks only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from controller.errors import SettingError
from controller.search.measure import Outcome, value_of
from controller.search.objectives import AccuracyFn, Objective, evaluate_static
from controller.spaces import Candidate, SearchSpace


class Measurer(Protocol):
    def measure(self, candidates: Sequence[Candidate]) -> list[Outcome]: ...


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
            raise SettingError("evals", f"must be >= 1, got {budget}")
        if measurer is None and any(o.source == "measured" for o in objectives):
            raise ValueError("measured objectives need agents to measure on")
        self.space, self.objectives, self.budget = space, list(objectives), budget
        self.measurer, self.accuracy, self.on_evaluated = measurer, accuracy, on_evaluated
        self.history: list[Evaluation] = []
        self._by_network: dict[tuple[int, ...], Evaluation] = {}
        self._by_arch_id: dict[str, Evaluation] = {}
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
        return self.space.network_key(x) in self._by_network

    def evaluate(self, encodings: Sequence[Sequence[int]]) -> list[Evaluation | None]:
        """Each architecture's evaluation; None where it has no network or the budget ran out first."""
        wanted = [self.space.network_key(x) if self.space.has_network(x) else None for x in encodings]
        first: dict[tuple[int, ...], tuple[int, ...]] = {}  # network key -> the canonical encoding asked first
        for x, key in zip(encodings, wanted, strict=True):
            if key is not None and key not in self._by_network and key not in first and len(first) < self.remaining:
                first[key] = tuple(self.space.canonical(x))
        if first:
            self._evaluate_new(list(first.values()), list(first))
        return [self._by_network.get(key) if key is not None else None for key in wanted]

    def _evaluate_new(self, encodings: list[tuple[int, ...]], keys: list[tuple[int, ...]]) -> None:
        """Evaluate the networks of ``encodings`` (``keys``: their network keys). Keys whose CGs hash alike (a
        duplicate the space's key misses) are one network: later ones share the first one's evaluation."""
        candidates: list[Candidate] = []
        fresh_keys: list[tuple[int, ...]] = []
        aliases: list[tuple[tuple[int, ...], str]] = []  # (network key, arch_id of the evaluation it shares)
        batch_ids: set[str] = set()
        for x, key in zip(encodings, keys, strict=True):
            candidate = self.space.candidate(x)
            if candidate.arch_id in self._by_arch_id or candidate.arch_id in batch_ids:
                aliases.append((key, candidate.arch_id))
                continue
            batch_ids.add(candidate.arch_id)
            candidates.append(candidate)
            fresh_keys.append(key)
        static = evaluate_static(self.objectives, candidates, self.accuracy) if candidates else {}
        measured = self.measurer.measure(candidates) if self.measurer and candidates else []
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
            self._by_network[fresh_keys[k]] = self._by_arch_id[c.graph.arch_id] = evaluation
            batch.append(evaluation)
        for key, arch_id in aliases:
            self._by_network[key] = self._by_arch_id[arch_id]
        if batch:
            self.on_evaluated(batch)

    def minimised(self, evaluations: Sequence[Evaluation]) -> np.ndarray:
        """(n, m) objective values in minimisation form."""
        return np.array([[e.values[n] for n in self.names] for e in evaluations], dtype=np.float64
                        ).reshape(len(evaluations), len(self.names)) * self.signs

    def successful(self) -> list[Evaluation]:
        return [e for e in self.history if e.ok]
