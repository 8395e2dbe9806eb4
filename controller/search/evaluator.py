"""The one door every caller evaluates networks through: budget, cache, objectives, failures, history.

The contract is archai's, asynchronous and batched: ``send`` candidates, then ``fetch_all`` their
evaluations. Objectives that need no device (FLOPs, parameters, accuracy) are computed at ``send``;
measured ones (latency, energy, power) are sent on to a ``Measurer`` (the fleet) and come back at
``fetch_all``. A network (by ``arch_id``, its CG's hash) is evaluated once: sending it again, under any
name, costs nothing and gives back the first evaluation. The budget counts evaluations of distinct networks.

Searches work in encodings of a space: ``evaluate`` maps them to networks (the space's ``network_key``,
NB-201's twins collapsed), skips architectures without a network (NB-201's unconnected cells) and sends
the rest through the same door. AutoGO, AutoBuild ``build`` and ``predictor layers`` send candidates born
as graphs; ``hwnas profile`` sends a user's model file (``ModelFile``: measured objectives only).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from hwnas.controller.errors import SettingError
from hwnas.controller.search.measure import Outcome, value_of
from hwnas.controller.search.objectives import AccuracyFn, Objective, evaluate_static
from hwnas.controller.spaces import Measurable, ModelFile, SearchSpace


class Measurer(Protocol):
    """The device's side of the door."""

    def send(self, candidates: Sequence[Measurable]) -> None:
        """Start measuring the candidates; returns at once."""

    def fetch_all(self) -> list[Outcome]:
        """The outcome of every candidate sent since the last fetch, in order, once each has settled."""


@dataclass
class Evaluation:
    """One distinct network's objective values, or why it has none."""

    index: int  # 1-based order of evaluation within the evaluator
    iteration: int
    candidate: Measurable
    values: dict[str, float] = field(default_factory=dict)  # natural units, by objective name
    error: str = ""  # why the network has no values (a measurement failed permanently)
    outcome: Outcome | None = None  # the device's outcome, where an objective was measured

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def encoding(self) -> tuple[int, ...]:
        return self.candidate.encoding

    @property
    def arch(self) -> str:
        return self.candidate.arch

    @property
    def arch_id(self) -> str:
        return self.candidate.arch_id


class Evaluator:
    """``budget`` None: no limit (callers that evaluate a fixed list of networks)."""

    def __init__(self, space: SearchSpace | None, objectives: Sequence[Objective], budget: int | None,
                 measurer: Measurer | None, accuracy: AccuracyFn | None,
                 on_evaluated: Callable[[list[Evaluation]], None] = lambda batch: None) -> None:
        if budget is not None and budget < 1:
            raise SettingError("evals", f"must be >= 1, got {budget}")
        if measurer is None and any(o.source == "measured" for o in objectives):
            raise ValueError("measured objectives need agents to measure on")
        self.space, self.objectives, self.budget = space, list(objectives), budget
        self.measurer, self.accuracy, self.on_evaluated = measurer, accuracy, on_evaluated
        self.history: list[Evaluation] = []
        self.iteration = 0
        self._by_network: dict[tuple[int, ...], Evaluation] = {}
        self._by_arch_id: dict[str, Evaluation] = {}
        self._sent: list[str | None] = []  # arch_id of each candidate sent since the last fetch; None: over budget
        self._pending: list[tuple[Measurable, dict[str, float]]] = []  # sent on, with the values known already

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.objectives]

    @property
    def signs(self) -> np.ndarray:
        return np.array([o.sign for o in self.objectives])

    @property
    def measures(self) -> bool:
        """Whether an objective is measured on the device (the measurer is asked at all)."""
        return any(o.source == "measured" for o in self.objectives)

    @property
    def remaining(self) -> int:
        """Evaluations the budget still allows, counting those sent and not yet fetched."""
        if self.budget is None:
            return 2**62
        return self.budget - len(self.history) - len(self._pending)

    # -- the door: candidates -----------------------------------------------------------------------------
    def send(self, candidates: Sequence[Measurable]) -> None:
        """Queue candidates: a network evaluated or queued already is not sent again, nor any beyond the budget."""
        queued = {c.arch_id for c, _ in self._pending}
        fresh: list[Measurable] = []
        for candidate in candidates:
            arch_id = candidate.arch_id
            known = arch_id in self._by_arch_id or arch_id in queued
            if not known and self.remaining - len(fresh) <= 0:
                self._sent.append(None)
                continue
            self._sent.append(arch_id)
            if not known:
                queued.add(arch_id)
                fresh.append(candidate)
        if not fresh:
            return
        files = [c.arch for c in fresh if isinstance(c, ModelFile)]
        static_objectives = [o.name for o in self.objectives if o.source != "measured"]
        if files and static_objectives:
            raise SettingError("objectives", f"{', '.join(static_objectives)} need a network's graph; the model "
                                             f"file(s) {', '.join(files)} have none: measure them only")
        static = evaluate_static(self.objectives, fresh, self.accuracy)
        self._pending += [(c, {name: float(v[k]) for name, v in static.items()}) for k, c in enumerate(fresh)]
        if self.measurer is not None and self.measures:
            self.measurer.send(fresh)

    def fetch_all(self) -> list[Evaluation | None]:
        """The evaluation of each candidate sent since the last fetch, in order (None: over budget)."""
        pending, self._pending = self._pending, []
        outcomes = self.measurer.fetch_all() if pending and self.measures and self.measurer is not None else []
        batch = []
        for k, (candidate, values) in enumerate(pending):
            outcome = outcomes[k] if outcomes else None
            error = ""
            for o in self.objectives:
                if o.source == "measured" and outcome is not None:
                    value, why = value_of(outcome, o.record_field, o.column)
                    if value is None:
                        error = error or why
                    else:
                        values[o.name] = value
            evaluation = Evaluation(len(self.history) + 1, self.iteration, candidate, values if not error else {},
                                    error, outcome)
            self.history.append(evaluation)
            self._by_arch_id[candidate.arch_id] = evaluation
            batch.append(evaluation)
        if batch:
            self.on_evaluated(batch)
        sent, self._sent = self._sent, []
        return [self._by_arch_id[a] if a is not None else None for a in sent]

    def evaluate_candidates(self, candidates: Sequence[Measurable]) -> list[Evaluation | None]:
        """``send`` then ``fetch_all``."""
        self.send(candidates)
        return self.fetch_all()

    # -- searches: encodings of the space -----------------------------------------------------------------
    def seen(self, x: Sequence[int]) -> bool:
        return self._space().network_key(x) in self._by_network

    def evaluate(self, encodings: Sequence[Sequence[int]]) -> list[Evaluation | None]:
        """Each architecture's evaluation; None where it has no network or the budget ran out first."""
        space = self._space()
        wanted = [space.network_key(x) if space.has_network(x) else None for x in encodings]
        first: dict[tuple[int, ...], tuple[int, ...]] = {}  # network key -> the canonical encoding asked first
        for x, key in zip(encodings, wanted, strict=True):
            if key is not None and key not in self._by_network and key not in first and len(first) < self.remaining:
                first[key] = tuple(space.canonical(x))
        if first:
            # keys whose CGs hash alike (a duplicate the space's key misses) share the first one's evaluation
            evaluations = self.evaluate_candidates([space.candidate(x) for x in first.values()])
            self._by_network.update((key, e) for key, e in zip(first, evaluations, strict=True) if e is not None)
        return [self._by_network.get(key) if key is not None else None for key in wanted]

    def _space(self) -> SearchSpace:
        if self.space is None:
            raise TypeError("this evaluator has no space: send candidates, not encodings")
        return self.space

    # -- reading the results ------------------------------------------------------------------------------
    def minimised(self, evaluations: Sequence[Evaluation]) -> np.ndarray:
        """(n, m) objective values in minimisation form."""
        return np.array([[e.values[n] for n in self.names] for e in evaluations], dtype=np.float64
                        ).reshape(len(evaluations), len(self.names)) * self.signs

    def successful(self) -> list[Evaluation]:
        return [e for e in self.history if e.ok]

    def failure_causes(self) -> list[tuple[str, int]]:
        """(error, count) of the failed evaluations, most frequent first: every caller's failure report."""
        return Counter(e.error for e in self.history if not e.ok).most_common()
