"""AutoBuild-NAS: a search space cut down to the modules AutoBuild ranks best (the paper's §7.2).

``hwnas autobuild build`` writes ``reduced_space.json``: per target equation, each stage's top-K modules. The
restricted space allows, per stage, the union of those modules over the equations (P equations x K modules,
as the paper's (4 x 25)^5), so a search spends its budget among networks AutoBuild already favours.

It keeps its base space's name and encodings: tables, the store, predictors and agents know its networks as
the base's, and a measurement taken in a restricted search serves any later search of the base space. What
changes is which encodings are networks (``has_network``: every stage's module is allowed) and how a search
varies them: a whole stage at a time, as the paper's AutoBuild-NAS mutates (``variation = "space"``: sample,
mutate and crossover pick allowed modules; ``repair`` moves any other encoding to the nearest allowed one).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.controller.autobuild.sequences import Module, SequenceFamily, sequence_family
from hwnas.controller.graph import ComputationGraph
from hwnas.controller.spaces import get_space
from hwnas.controller.spaces.base import SearchSpace

ENUMERATE_LIMIT = 1_000_000  # encodings enumerate() lists at most


class RestrictedSpace(SearchSpace):
    variation = "space"

    def __init__(self, base: SearchSpace, family: SequenceFamily, allowed: Sequence[Sequence[Module]],
                 source: str = "") -> None:
        if len(allowed) != len(family.stages):
            raise ValueError(f"a restricted {base.name} space needs modules for each of its "
                             f"{len(family.stages)} stages, got {len(allowed)}")
        for u, modules in enumerate(allowed):
            if not modules:
                raise ValueError(f"stage {u + 1} of the restricted {base.name} space allows no module")
        self.base, self.family = base, family
        self.allowed = [list(dict.fromkeys(tuple(m) for m in modules)) for modules in allowed]
        self._sets = [set(modules) for modules in self.allowed]
        self.name = base.name
        self.predictor_features, self.accuracy_table = base.predictor_features, base.accuracy_table
        self.label_table = base.label_table
        counts = " x ".join(str(len(m)) for m in self.allowed)
        self.description = (f"{base.description}, restricted to {counts} modules per stage"
                            + (f" ({source})" if source else ""))

    # -- the base space's encodings, unchanged -----------------------------------------------------------
    @property
    def n_var(self) -> int:
        return self.base.n_var

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return self.base.bounds()

    def validate(self, x: Sequence[int]) -> list[int]:
        return self.base.validate(x)

    def decode(self, x: Sequence[int]) -> dict[str, Any]:
        return self.base.decode(x)

    def encode(self, arch: Mapping[str, Any]) -> list[int]:
        return self.base.encode(arch)

    def to_graph(self, x: Sequence[int]) -> ComputationGraph:
        return self.base.to_graph(x)

    def to_string(self, x: Sequence[int]) -> str:
        return self.base.to_string(x)

    def from_string(self, text: str) -> list[int]:
        return self.base.from_string(text)

    def canonical(self, x: Sequence[int]) -> list[int]:
        return self.base.canonical(x)

    def network_key(self, x: Sequence[int]) -> tuple[int, ...]:
        return self.base.network_key(x)

    def variable_name(self, i: int) -> str:
        return self.base.variable_name(i)

    # -- what the restriction changes --------------------------------------------------------------------
    def size(self) -> int:
        """Allowed module combinations (an upper bound on distinct networks: twins collapse in the base)."""
        return math.prod(len(m) for m in self.allowed)

    def has_network(self, x: Sequence[int]) -> bool:
        modules = self.family.modules(self.validate(x))
        return all(m in s for m, s in zip(modules, self._sets, strict=True)) and self.base.has_network(x)

    def sample(self, rng: np.random.Generator) -> list[int]:
        return self.family.assemble([m[rng.integers(len(m))] for m in self.allowed])

    def mutate(self, x: Sequence[int], rng: np.random.Generator, rate: float | None = None) -> list[int]:
        """Each stage replaced by another allowed module with probability ``rate`` (default one stage in
        the network's number of stages); at least one stage changes where any can."""
        modules = self.family.modules(self.repair(x))
        movable = [u for u, m in enumerate(self.allowed) if len(m) > 1]
        if not movable:
            return self.family.assemble(modules)
        rate = rate if rate is not None else 1.0 / len(self.allowed)
        chosen = [u for u in movable if rng.random() < rate] or [movable[rng.integers(len(movable))]]
        for u in chosen:
            others = [m for m in self.allowed[u] if m != modules[u]]
            modules[u] = others[rng.integers(len(others))]
        return self.family.assemble(modules)

    def crossover(self, a: Sequence[int], b: Sequence[int], rng: np.random.Generator
                  ) -> tuple[list[int], list[int]]:
        """Two children that take each stage's module from one parent or the other (uniform per stage)."""
        ma, mb = self.family.modules(self.repair(a)), self.family.modules(self.repair(b))
        swap = rng.random(len(ma)) < 0.5
        first = [y if s else x for x, y, s in zip(ma, mb, swap, strict=True)]
        second = [x if s else y for x, y, s in zip(ma, mb, swap, strict=True)]
        return self.family.assemble(first), self.family.assemble(second)

    def repair(self, x: Sequence[int]) -> list[int]:
        """Each stage's module replaced by the nearest allowed one (fewest differing layers, a missing or
        extra layer counting as one; ties go to the better-ranked module)."""
        modules = self.family.modules(self.validate(x))
        return self.family.assemble([m if m in s else min(allowed, key=lambda a, m=m: _distance(a, m))
                                     for m, s, allowed in zip(modules, self._sets, self.allowed, strict=True)])

    def enumerate(self) -> Iterator[list[int]]:
        if self.size() > ENUMERATE_LIMIT:
            raise NotImplementedError(f"the restricted {self.name} space has {self.size():.3g} module "
                                      f"combinations: too many to enumerate")
        for combo in itertools.product(*self.allowed):
            yield self.family.assemble(list(combo))


def _distance(a: Module, b: Module) -> int:
    return sum(x != y for x, y in zip(a, b, strict=False)) + abs(len(a) - len(b))


def restricted_space(path: Path, space: str, options: Mapping[str, Any] | None = None) -> RestrictedSpace:
    """The reduced space ``hwnas autobuild build`` wrote to ``path`` (``reduced_space.json``) over the space
    ``space`` built with ``options``: each stage allows the union of the equations' top modules, in rank
    order, the equations taking turns. Families that vary the input size are searched at the size the
    modules were ranked at unless ``options`` name another."""
    try:
        spec = json.loads(Path(path).read_text())
        space_name, per_equation = spec["space"], dict(spec["modules"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a reduced space written by `hwnas autobuild build`: {exc}") from None
    if space_name != space:
        raise ValueError(f"{path} restricts the {space_name} space, not {space}")
    family = sequence_family(space)
    options = dict(options or {})
    if family.resolutions and spec.get("resolution") and "resolution" not in options:
        options["resolution"] = int(spec["resolution"])
    base = get_space(space, **options)
    stages = len(family.stages)
    allowed: list[list[Module]] = [[] for _ in range(stages)]
    for equation, tables in per_equation.items():
        if len(tables) != stages:
            raise ValueError(f"{path}: equation {equation!r} lists {len(tables)} stages; {space} has {stages}")
    for rank in range(max((len(t) for tables in per_equation.values() for t in tables), default=0)):
        for tables in per_equation.values():
            for u, table in enumerate(tables):
                if rank < len(table):
                    allowed[u].append(family.parse(u, table[rank], where=str(path)))
    return RestrictedSpace(base, family, allowed, source=f"{Path(path).name}, {len(per_equation)} equation(s), "
                                                         f"top {spec.get('top_k', '?')}")
