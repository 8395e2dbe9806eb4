"""What a search algorithm works on, and what it must be (pymoo's split of Problem and Algorithm).

A ``SearchProblem`` is the space, the evaluator (objectives, budget, cache of distinct networks), the seed
and a progress callback: the same for every algorithm. A ``SearchAlgorithm`` owns its settings: its
constructor takes them and refuses a bad one with a ``SettingError`` naming it, before anything is measured.

pymoo's ask and tell: the driver (``drive``) owns the loop. An algorithm ``ask``s for a batch (an ``Ask``) and
is ``tell``-ed its evaluations; it reads what was evaluated from the evaluator but never evaluates itself, so
a driver may pause a search between batches, or hand each batch to the fleet, without the algorithm knowing.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from hwnas.controller.errors import SettingError
from hwnas.controller.search.evaluator import Evaluation, Evaluator
from hwnas.controller.search.evolution import PENALTY
from hwnas.controller.spaces import SearchSpace
from hwnas.predictors import Samples


class Predicts(Protocol):
    """All LINAS's inner search asks of a predictor it trains: values from the space's predictor views, of
    which it reads ``needs``."""

    needs: tuple[str, ...]

    def predict(self, samples: Samples) -> np.ndarray: ...


@runtime_checkable
class PredictsArchitectures(Protocol):
    """A predictor LINAS is given that reads architectures itself (a saved accuracy predictor that builds each
    network's graph, the table of the perfect-predictor ablation)."""

    def predict_encodings(self, encodings: Sequence[Sequence[int]]) -> np.ndarray: ...


@dataclass
class SearchProblem:
    space: SearchSpace
    evaluator: Evaluator
    seed: int = 0
    note: Callable[[str], None] = lambda text: None  # progress lines

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def sample_new(self, n: int, exclude: set[tuple[int, ...]] = frozenset()) -> list[list[int]]:
        """Up to ``n`` random architectures with a network, of distinct networks none evaluated or excluded
        yet (``exclude``: network keys)."""
        out: list[list[int]] = []
        chosen = set(exclude)
        for _ in range(max(100 * n, 1000)):
            if len(out) >= n:
                break
            x = self.space.sample(self.rng)
            if not self.space.has_network(x):
                continue
            key = self.space.network_key(x)
            if key in chosen or self.evaluator.seen(x):
                continue
            chosen.add(key)
            out.append(x)
        return out

    def evaluate(self, ask: Ask) -> list[Evaluation | None]:
        """Evaluate what an algorithm asked for: every encoding, or (``ask.want``) in order until that many new
        networks are evaluated. A candidate whose CG equals one already evaluated costs nothing (the evaluator
        hands back that evaluation), so the next ones in order take its place. None where not evaluated."""
        self.evaluator.iteration = ask.iteration
        if ask.want is None:
            return self.evaluator.evaluate(ask.encodings)
        out: list[Evaluation | None] = []
        done = 0
        while done < ask.want and len(out) < len(ask.encodings) and self.evaluator.remaining > 0:
            chunk = ask.encodings[len(out):len(out) + ask.want - done]
            before = len(self.evaluator.history)
            out += self.evaluator.evaluate(chunk)
            done += len(self.evaluator.history) - before
        return out + [None] * (len(ask.encodings) - len(out))

    def minimised_or_penalty(self, evaluations: Sequence[Evaluation | None]) -> np.ndarray:
        """Objective rows (minimisation form) of successful evaluations; PENALTY rows for the rest."""
        F = np.full((len(evaluations), len(self.evaluator.objectives)), PENALTY)
        for k, e in enumerate(evaluations):
            if e is not None and e.ok:
                F[k] = self.evaluator.minimised([e])[0]
        return F


@dataclass(frozen=True)
class Ask:
    """A batch an algorithm asks to have evaluated."""

    encodings: list[list[int]]
    iteration: int
    want: int | None = None  # evaluate in order until this many new networks are; None: every encoding


Steps = Generator[Ask, list[Evaluation | None], None]


class SearchAlgorithm(abc.ABC):
    """Subclasses are dataclasses whose fields are their settings; ``check`` validates them at construction.

    Besides the evaluations, a run may leave ``predicted_front`` (architecture, predicted natural values)
    and ``iteration_seconds`` (the controller's own time per iteration), which the run's files report.
    Fields with ``metadata={"recorded": False}`` (live objects such as a fitted predictor) are not written
    to ``run.json``.
    """

    name: ClassVar[str]
    # An algorithm that learns from one population to make the next: with fewer than two populations of
    # evaluations it is only random search, so ``fit_budget`` shrinks the population.
    iterates: ClassVar[bool] = False

    def __post_init__(self) -> None:
        self.predicted_front: list[tuple[tuple[int, ...], list[float]]] = []
        self.iteration_seconds: list[float] = []
        self.check()

    def check(self) -> None:
        """Raise SettingError for a setting out of range."""
        population = getattr(self, "population", None)
        if population is not None and population < 2:
            raise SettingError("population", f"must be >= 2, got {population}")

    def fit_budget(self, evals: int) -> str:
        """Fit the settings to a budget of ``evals`` evaluations; says what changed and why ("" if nothing).

        ``search --algo linas --evals 40`` with its population of 50 measured the random first population and
        nothing else, silently: a population is now at most half the budget, so at least one iteration runs.
        """
        population = getattr(self, "population", None)
        if not self.iterates or population is None or evals >= 2 * population:
            return ""
        if evals < 4:
            raise SettingError("evals", f"must be >= 4 for {self.name}: two populations of at least 2")
        self.population = evals // 2  # type: ignore[attr-defined]
        return (f"{self.name}: {evals} evaluations leave no iteration after a first population of {population} "
                f"(only random networks would be measured); using a population of {self.population} instead")

    def check_objectives(self, names: Sequence[str]) -> None:
        """Raise SettingError if the algorithm cannot search these objectives (checked before measuring).
        Any algorithm searches any two or more objectives unless it says otherwise."""
        return None

    @abc.abstractmethod
    def steps(self, problem: SearchProblem) -> Steps:
        """The algorithm as a coroutine: yields each ``Ask`` and receives its evaluations, until the budget
        (``problem.evaluator.remaining``) is spent or the algorithm has nothing left to ask."""

    def setup(self, problem: SearchProblem) -> None:
        """Start the search on ``problem``; ``ask`` then gives its first batch."""
        self._steps = self.steps(problem)
        self._asked: Ask | None = next(self._steps, None)

    def ask(self) -> Ask | None:
        """The batch to evaluate next; None once the search is over."""
        return self._asked

    def tell(self, evaluations: list[Evaluation | None]) -> None:
        """The evaluations of the last ``ask``, one per encoding, in order."""
        try:
            self._asked = self._steps.send(evaluations)
        except StopIteration:
            self._asked = None

    def settings(self) -> dict[str, Any]:
        """The settings as run.json records them."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)  # type: ignore[arg-type]
                if f.metadata.get("recorded", True)}

    def first_population(self, problem: SearchProblem, population: int) -> list[list[int]]:
        """The seeded random first population every algorithm starts from (runs of one seed share it)."""
        return problem.sample_new(min(population, problem.evaluator.remaining))


def drive(algorithm: SearchAlgorithm, problem: SearchProblem) -> None:
    """Ask, evaluate, tell, until the algorithm asks for nothing more."""
    algorithm.setup(problem)
    while (ask := algorithm.ask()) is not None:
        algorithm.tell(problem.evaluate(ask))
