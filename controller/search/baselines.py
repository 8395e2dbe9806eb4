"""The reference searches: uniform random sampling, and NSGA-II whose every fitness is a measurement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hwnas.controller.errors import SettingError
from hwnas.controller.search.evolution import inner_algorithm
from hwnas.controller.search.problem import Ask, SearchAlgorithm, SearchProblem, Steps

STALE_GENERATIONS = 50  # NSGA-II generations without a new architecture before it stops early


@dataclass
class RandomSearch(SearchAlgorithm):
    """Uniform samples of the space, a population at a time."""

    name: ClassVar[str] = "random"
    population: int = 50

    def steps(self, problem: SearchProblem) -> Steps:
        batch = self.first_population(problem, self.population)
        iteration = 0
        while batch:
            yield Ask(batch, iteration)
            iteration += 1
            batch = problem.sample_new(min(self.population, problem.evaluator.remaining))


def check_evolution(population: int, crossover: float, mutation: float) -> None:
    """The variation settings NSGA-II and LINAS's inner search share."""
    for setting, value in (("crossover", crossover), ("mutation", mutation)):
        if not 0.0 <= value <= 1.0:
            raise SettingError(setting, f"is a probability in [0, 1], got {value}")


@dataclass
class Nsga2Search(SearchAlgorithm):
    """NSGA-II on measurements only ("validation only" in LINAS's terms), by pymoo's ask and tell."""

    name: ClassVar[str] = "nsga2"
    iterates: ClassVar[bool] = True
    population: int = 50
    crossover: float = 0.9
    mutation: float = 0.02

    def check(self) -> None:
        super().check()
        check_evolution(self.population, self.crossover, self.mutation)

    def steps(self, problem: SearchProblem) -> Steps:
        from pymoo.core.problem import Problem
        from pymoo.core.termination import NoTermination

        evaluator = problem.evaluator
        first = np.array(self.first_population(problem, self.population), dtype=np.int64)
        low, high = problem.space.bounds()
        algorithm = inner_algorithm("nsga2", len(first), len(evaluator.objectives), self.crossover, self.mutation,
                                    sampling=first, space=problem.space)
        pymoo_problem = Problem(n_var=problem.space.n_var, n_obj=len(evaluator.objectives), xl=low, xu=high,
                                vtype=int)
        algorithm.setup(pymoo_problem, termination=NoTermination(), seed=problem.seed, verbose=False)
        stale = generation = 0
        while evaluator.remaining > 0 and stale < STALE_GENERATIONS:
            population = algorithm.ask()
            before = len(evaluator.history)
            evaluations = yield Ask(np.round(population.get("X")).astype(np.int64).tolist(), generation)
            population.set("F", problem.minimised_or_penalty(evaluations))
            algorithm.tell(infills=population)
            generation += 1
            stale = stale + 1 if len(evaluator.history) == before else 0
        if stale >= STALE_GENERATIONS:
            problem.note(f"NSGA-II produced no new architecture for {STALE_GENERATIONS} generations; stopped early")
