"""The contract every search space implements.

An architecture is handled as its integer encoding (what pymoo searches
over); the space turns encodings into CGs and into a human-readable string
and back. Every malformed string or encoding is a ValueError that names the
bad field and its allowed values.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from hwnas.controller.graph import ComputationGraph
from hwnas.controller.spaces.candidate import Candidate


def identities_last(x: Sequence[int], stages: Sequence[int], identity: int) -> tuple[int, ...]:
    """Within each stage (``stages``: layers per stage), the ``identity`` choices after the stage's first
    layer moved to the stage's end. Those layers keep the shape, so the move leaves the network unchanged:
    the key of macro spaces whose skips are identities (NAS-Bench-Macro's ``get_real_arch``, FBNet)."""
    key: list[int] = []
    start = 0
    for n in stages:
        rest = list(x[start + 1:start + n])
        kept = [v for v in rest if v != identity]
        key += [x[start], *kept, *[identity] * (len(rest) - len(kept))]
        start += n
    return tuple(key)


class SearchSpace(abc.ABC):
    """A family of architectures. Besides encoding and building networks, a space declares what it offers,
    so that callers ask it instead of checking its name:

    - ``predictor_features``: the light predictors' view of an encoding (``hwnas.controller.learning.data``'s
      registry): "one-hot" of each variable, "nb201-cell" (the one-hot plus NB-201's cell graph) or
      "one-hot+cg" (the one-hot plus each network's whole CG, for the whole-CG GNNs);
    - ``accuracy_table``: the packaged accuracy table a search may look accuracies up in ("" if none);
    - ``label_table``: the packaged table of labels (accuracy or latency) predictors are benched on ("" if none);
    - ``network_key``: one key per distinct network; ``mutate``/``crossover``: the variation operators;
    - ``variation``: how evolutionary searches vary encodings: "integer" (pymoo's SBX and polynomial mutation
      on the integers, as LINAS) or "space" (the space's own ``sample``/``mutate``/``crossover``/``repair``,
      for spaces whose encodings are not all networks of the search, such as AutoBuild-NAS's).
    """

    name: str
    description: str
    predictor_features: str = "one-hot"
    accuracy_table: str = ""
    label_table: str = ""
    variation: str = "integer"

    @property
    @abc.abstractmethod
    def n_var(self) -> int: ...

    @abc.abstractmethod
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Inclusive integer lower and upper bounds of each variable (pymoo's xl, xu)."""

    @abc.abstractmethod
    def validate(self, x: Sequence[int]) -> list[int]:
        """``x`` as a list of ints, or a ValueError naming the first bad variable."""

    @abc.abstractmethod
    def decode(self, x: Sequence[int]) -> dict[str, Any]:
        """The architecture in the space's own terms (op names, kernel sizes, ratios)."""

    @abc.abstractmethod
    def encode(self, arch: Mapping[str, Any]) -> list[int]:
        """Inverse of ``decode``; returns the canonical encoding."""

    @abc.abstractmethod
    def to_graph(self, x: Sequence[int]) -> ComputationGraph: ...

    @abc.abstractmethod
    def to_string(self, x: Sequence[int]) -> str: ...

    @abc.abstractmethod
    def from_string(self, text: str) -> list[int]: ...

    @abc.abstractmethod
    def size(self) -> int:
        """Number of distinct architectures."""

    def has_network(self, x: Sequence[int]) -> bool:
        """Whether ``x`` describes a network at all (NB-201: False for the 341 unconnected cells)."""
        return True

    def options_for_input(self, input_shape: Sequence[int]) -> dict[str, Any]:
        """The constructor options that rebuild this space's networks for ``input_shape`` (NCHW): what an
        exported record's input shape says about the space it came from. Every space here takes its input's
        side as ``resolution``; a space whose networks take another input says so by overriding this."""
        return {"resolution": int(input_shape[-1])}

    def candidate(self, x: Sequence[int]) -> Candidate:
        """The architecture ``x`` as the value searches, campaigns and the fleet pass around."""
        return Candidate(self.name, tuple(int(v) for v in x), self.to_string(x), self.to_graph(x))

    def canonical(self, x: Sequence[int]) -> list[int]:
        """The representative encoding: spaces with masked variables zero the inactive ones."""
        return self.validate(x)

    def network_key(self, x: Sequence[int]) -> tuple[int, ...]:
        """The network ``x`` describes, as a hashable key: encodings with one key build one network.

        A search spends its budget on distinct keys. The default is the canonical encoding; spaces whose
        encodings can describe one network in several ways (NB-201's dead edges) collapse them here.
        """
        return tuple(self.canonical(x))

    def sample(self, rng: np.random.Generator) -> list[int]:
        low, high = self.bounds()
        return self.canonical(rng.integers(low, high + 1).tolist())

    def mutate(self, x: Sequence[int], rng: np.random.Generator, rate: float | None = None) -> list[int]:
        """Resample each variable with probability ``rate`` (default 1/n_var); always changes something."""
        x = self.validate(x)
        low, high = self.bounds()
        rate = rate if rate is not None else 1.0 / self.n_var
        while True:
            child = list(x)
            for i in range(self.n_var):
                if rng.random() < rate:
                    child[i] = int(rng.integers(low[i], high[i] + 1))
            child = self.canonical(child)
            if child != self.canonical(x):
                return child

    def crossover(self, a: Sequence[int], b: Sequence[int], rng: np.random.Generator
                  ) -> tuple[list[int], list[int]]:
        """Two children that take each variable from one parent or the other (uniform crossover)."""
        a, b = self.validate(a), self.validate(b)
        swap = rng.random(self.n_var) < 0.5
        return (self.canonical([y if s else x for x, y, s in zip(a, b, swap, strict=True)]),
                self.canonical([x if s else y for x, y, s in zip(a, b, swap, strict=True)]))

    def repair(self, x: Sequence[int]) -> list[int]:
        """The encoding of the search nearest ``x`` (in bounds); every encoding is one by default."""
        return self.canonical(x)

    def enumerate(self) -> Iterator[list[int]]:
        raise NotImplementedError(f"{self.name} has {self.size():.3g} architectures: too many to enumerate")

    def _check_length(self, x: Sequence[int]) -> list[int]:
        try:
            values = [int(v) for v in x]
        except (TypeError, ValueError):
            raise ValueError(f"{self.name} encoding must be {self.n_var} integers, got {x!r}") from None
        if len(values) != self.n_var:
            raise ValueError(f"{self.name} encoding must have {self.n_var} variables, got {len(values)}")
        if any(v != float(orig) for v, orig in zip(values, x, strict=True)):
            raise ValueError(f"{self.name} encoding must be integers, got {list(x)}")
        low, high = self.bounds()
        for i, v in enumerate(values):
            if not low[i] <= v <= high[i]:
                raise ValueError(f"{self.name} variable {i} ({self.variable_name(i)}) must be in "
                                 f"[{low[i]}, {high[i]}], got {v}")
        return values

    def variable_name(self, i: int) -> str:
        return f"x{i}"
