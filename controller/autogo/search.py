"""AutoGO's Pareto-front evolution (its Algorithm 1) with a hardware metric measured by the device's agents.

Iteration 0 mutates the input network; later iterations take k parents from the front of (predicted
accuracy, hardware metric), filled by the lowest rank-sum of the others when the front is smaller than k.
Each parent gets one mutation round (up to ``candidates`` valid children); children outside the FLOPs
bounds (relative to the input network) are dropped; the PSC predictor scores the rest. Measuring a
hundred children per parent on a device would take hours, so the children worth measuring are chosen
first: those non-dominated in (predicted accuracy, FLOPs), at most ``measure_per_parent`` of them, best
predicted accuracy first. With ``--metric flops`` every valid child is kept (FLOPs cost nothing).
All the iteration's chosen children are evaluated in one batch through the one evaluator (``send`` and
``fetch_all``: the fleet's queue for a measured metric, the CG for FLOPs or parameters).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from hwnas.controller.autogo.database import SegmentDatabase
from hwnas.controller.autogo.mutation import Mutation, Mutator
from hwnas.controller.autogo.psc_data import decompositions, partitioned
from hwnas.controller.errors import SettingError
from hwnas.controller.graph.ir import ComputationGraph
from hwnas.controller.learning.families import graph_samples
from hwnas.controller.search.evaluator import Evaluation, Evaluator
from hwnas.controller.search.hypervolume import pareto_mask
from hwnas.controller.spaces import Candidate
from hwnas.predictors import Predictor, Samples
from hwnas.predictors.samples import graph_array


@dataclass
class Individual:
    """A network of the population: its evaluation (of AutoGO's one metric) and where it came from."""

    id: int
    evaluation: Evaluation
    iteration: int
    predicted_accuracy: float
    parent: int | None = None
    mutation: Mutation | None = field(default=None, repr=False)
    outside: str = ""  # why the PSC's prediction is unvouched for: the network lies outside what it learned

    @property
    def graph(self) -> ComputationGraph:
        return self.evaluation.candidate.graph

    @property
    def metric(self) -> float | None:
        """The hardware metric in its natural unit; None when its measurement failed."""
        return next(iter(self.evaluation.values.values()), None)

    @property
    def error(self) -> str:
        return self.evaluation.error

    @property
    def macs(self) -> int:
        return self.graph.macs()


def ranks(values: np.ndarray) -> np.ndarray:
    """0 for the smallest value; ties share the lower rank."""
    return np.searchsorted(np.sort(values), values)


class PscScorer:
    """Predicted accuracy: of a child, the PSC on its {P, s*, C}; of the input network, the mean over its
    decompositions (every segment of its full-vocabulary segmentation as S)."""

    def __init__(self, predictor: Predictor, database: SegmentDatabase) -> None:
        self.predictor, self.database = predictor, database

    def children(self, mutations: Sequence[Mutation]) -> tuple[np.ndarray, list[str]]:
        """Predicted accuracy of each child, and why it lies outside the PSC's training domain ("" inside)."""
        if not mutations:
            return np.zeros(0), []
        views = graph_array([partitioned(m.child, m.parts()) for m in mutations])
        return self.predictor.predict_flagged(Samples(partitioned=views))

    def network(self, graph: ComputationGraph) -> tuple[float, str]:
        views = graph_array([partitioned(graph, part) for part in decompositions(self.database, graph)])
        predicted, reasons = self.predictor.predict_flagged(Samples(partitioned=views))
        return float(np.mean(predicted)), next((r for r in reasons if r), "")


class GraphScorer:
    """Predicted accuracy from the whole computation graph (GENNAPE, or any predictor of the ``graphs`` view):
    the alternative to the PSC that needs no segment decomposition, so the input network is scored as it is."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor

    def children(self, mutations: Sequence[Mutation]) -> tuple[np.ndarray, list[str]]:
        if not mutations:
            return np.zeros(0), []
        return self.predictor.predict_flagged(graph_samples([m.child for m in mutations], None))

    def network(self, graph: ComputationGraph) -> tuple[float, str]:
        predicted, reasons = self.predictor.predict_flagged(graph_samples([graph], None))
        return float(predicted[0]), reasons[0]


def scorer_for(predictor: Predictor, database: SegmentDatabase) -> PscScorer | GraphScorer:
    """The scorer a predictor's inputs call for: segment-partitioned graphs (PSC) or whole graphs (GENNAPE)."""
    if "partitioned" in predictor.needs:
        return PscScorer(predictor, database)
    if "graphs" in predictor.needs:
        return GraphScorer(predictor)
    raise ValueError(f"a {predictor.kind!r} predictor reads {', '.join(predictor.needs)}, not computation graphs: "
                     "AutoGO needs PSC (hwnas autogo train-psc) or GENNAPE (hwnas predictor gennape pretrain)")


class AutoGO:
    """``evaluator`` evaluates the one metric (its only objective); ``name`` names the input network, and each
    network evaluated is ``name~<arch_id prefix>``."""

    def __init__(self, root: ComputationGraph, name: str, database: SegmentDatabase,
                 scorer: PscScorer | GraphScorer, evaluator: Evaluator,
                 rng: np.random.Generator, parents: int = 10, candidates: int = 100,
                 measure_per_parent: int | None = 8, flops_bounds: tuple[float, float] | None = (-0.2, 0.1),
                 allowed_ops: set[str] | None = None,
                 on_iteration: Callable[[int, list[Individual]], None] = lambda it, batch: None) -> None:
        if parents < 1 or candidates < 1:
            raise SettingError("parents" if parents < 1 else "candidates",
                               f"must be >= 1, got {parents if parents < 1 else candidates}")
        if len(evaluator.objectives) != 1:
            raise SettingError("metric", f"AutoGO evolves against one metric, got {evaluator.names}")
        self.root, self.name = root.canonical(), name
        self.database, self.scorer, self.evaluator = database, scorer, evaluator
        self.metric = evaluator.objectives[0]
        self.rng, self.parents, self.candidates = rng, parents, candidates
        self.measure_per_parent, self.flops_bounds = measure_per_parent, flops_bounds
        self.mutator = Mutator(database, rng, allowed_ops)
        self.on_iteration = on_iteration
        self.population: list[Individual] = []
        self._seen: set[str] = set()

    # -- the front ---------------------------------------------------------------------------------
    def _scored(self) -> list[Individual]:
        return [i for i in self.population if i.metric is not None]

    def _objectives(self, individuals: Sequence[Individual]) -> np.ndarray:
        """(n, 2) in minimisation form: -predicted accuracy, the metric times its sign."""
        return np.array([[-i.predicted_accuracy, self.metric.sign * i.metric] for i in individuals],
                        dtype=np.float64).reshape(len(individuals), 2)

    def front(self) -> list[Individual]:
        scored = self._scored()
        return [scored[k] for k in np.flatnonzero(pareto_mask(self._objectives(scored)))] if scored else []

    def select_parents(self) -> list[Individual]:
        """k from the front at random; if the front is smaller, the others with the lowest rank-sum fill it."""
        front = self.front()
        if len(front) >= self.parents:
            return [front[k] for k in sorted(self.rng.choice(len(front), self.parents, replace=False))]
        ids = {i.id for i in front}
        others = [i for i in self._scored() if i.id not in ids]
        if others:
            objectives = self._objectives(others)
            rank_sum = ranks(objectives[:, 0]) + ranks(objectives[:, 1])
            order = np.lexsort((np.arange(len(others)), rank_sum))
            front += [others[k] for k in order[: self.parents - len(front)]]
        return front

    # -- one iteration -------------------------------------------------------------------------------
    def evaluate(self, graphs: Sequence[ComputationGraph]) -> list[Evaluation]:
        """Each network's evaluation, in one batch through the evaluator."""
        evaluations = self.evaluator.evaluate_candidates(
            [Candidate.of_graph("autogo", f"{self.name}~{g.arch_id[:12]}", g) for g in graphs])
        return [e for e in evaluations if e is not None]  # no budget: every network is evaluated

    def start(self) -> Individual:
        evaluation = self.evaluate([self.root])[0]
        predicted, outside = self.scorer.network(self.root)
        root = Individual(0, evaluation, 0, predicted, outside=outside)
        if root.metric is None:
            raise RuntimeError(f"the input network could not be measured: {root.error}")
        self.population.append(root)
        self._seen.add(self.root.arch_id)
        self.on_iteration(0, [root])
        return root

    def _within_bounds(self, mutation: Mutation) -> bool:
        if self.flops_bounds is None:
            return True
        change = mutation.child.macs() / max(1, self.root.macs()) - 1.0
        return self.flops_bounds[0] <= change <= self.flops_bounds[1]

    def _choose(self, mutations: list[Mutation], accuracy: np.ndarray) -> list[int]:
        """Which children of one parent to measure (all when measure_per_parent is None)."""
        if self.measure_per_parent is None or len(mutations) <= self.measure_per_parent:
            return list(range(len(mutations)))
        proxy = np.column_stack([-accuracy, [m.child.macs() for m in mutations]])
        front = np.flatnonzero(pareto_mask(proxy)).tolist()
        chosen = sorted(front, key=lambda k: -accuracy[k])[: self.measure_per_parent]
        if len(chosen) < self.measure_per_parent:  # top up with the best predicted accuracy
            rest = [k for k in np.argsort(-accuracy, kind="stable").tolist() if k not in chosen]
            chosen += rest[: self.measure_per_parent - len(chosen)]
        return chosen

    def step(self, iteration: int) -> list[Individual]:
        """One iteration: mutate each parent, pick children, measure them in one batch, grow the population."""
        picked: list[tuple[Individual, Mutation, float, str]] = []
        for parent in self.select_parents():
            mutations = [m for m in self.mutator.mutate(parent.graph, self.candidates)
                         if m.child.arch_id not in self._seen and self._within_bounds(m)]
            accuracy, outside = self.scorer.children(mutations)
            for k in self._choose(mutations, accuracy):
                if mutations[k].child.arch_id not in self._seen:
                    self._seen.add(mutations[k].child.arch_id)
                    picked.append((parent, mutations[k], float(accuracy[k]), outside[k]))
        evaluated = self.evaluate([m.child for _, m, _, _ in picked]) if picked else []
        batch = []
        for (parent, mutation, accuracy, outside), evaluation in zip(picked, evaluated, strict=True):
            individual = Individual(len(self.population), evaluation, iteration, accuracy, parent.id, mutation,
                                    outside)
            self.population.append(individual)
            batch.append(individual)
        self.on_iteration(iteration, batch)
        return batch

    def run(self, iterations: int) -> list[Individual]:
        if iterations < 1:
            raise SettingError("iterations", f"must be >= 1, got {iterations}")
        if not self.population:
            self.start()
        for iteration in range(1, iterations + 1):
            self.step(iteration)
        return self.front()
