"""Networks of sequence families as AutoBuild sees them: stages of layers, one graph node per layer.

A network is, per stage, a tuple of layer choices (its *module* of that stage). Each layer becomes a node
whose features are categorical (kernel, expansion, stage, position in the stage, and the input resolution
where a family varies it), each coded as an index into the category's values; edges run forward from each
layer to the next. Messages flow forward only, so the embedding of a stage's last layer at hop level
``l - 1`` sees exactly that stage's ``l`` layers: the module's score needs no rest of the network.

Families are registered by space name; adding one is a class with ``stages``, ``layer_values``,
``modules`` and ``assemble``.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from hwnas.controller.spaces import get_space
from hwnas.predictors.samples import Samples, graph_array


@dataclass(frozen=True)
class Stage:
    lengths: tuple[int, ...]  # how many layers the stage may have
    choices: tuple[str, ...]  # the layer choices, by name

    def modules(self) -> Iterator[tuple[int, ...]]:
        for length in self.lengths:
            yield from itertools.product(range(len(self.choices)), repeat=length)

    def count(self) -> int:
        return sum(len(self.choices) ** length for length in self.lengths)


Module = tuple[int, ...]  # the choice index of each layer of one stage


class SequenceFamily(ABC):
    space: str
    layer_categories: tuple[tuple[str, tuple[str, ...]], ...]  # (name, values) a layer's choice sets
    resolutions: tuple[int, ...] = ()  # a "resolution" category when the family varies the input size

    @property
    @abstractmethod
    def stages(self) -> tuple[Stage, ...]: ...

    @abstractmethod
    def layer_values(self, stage: int, choice: int) -> tuple[str, ...]:
        """The values of ``layer_categories`` a layer with this choice has."""

    @abstractmethod
    def modules(self, x: Sequence[int]) -> list[Module]:
        """The module of each stage of architecture ``x``."""

    @abstractmethod
    def assemble(self, modules: Sequence[Module]) -> list[int]:
        """The architecture with these modules (one per stage)."""

    @property
    def categories(self) -> list[str]:
        names = [name for name, _ in self.layer_categories] + ["stage", "layer"]
        return names + (["resolution"] if self.resolutions else [])

    @property
    def values(self) -> list[list[str]]:
        longest = max(max(s.lengths) for s in self.stages)
        out = [list(v) for _, v in self.layer_categories]
        out += [[str(u + 1) for u in range(len(self.stages))], [str(p + 1) for p in range(longest)]]
        return out + ([[str(r) for r in self.resolutions]] if self.resolutions else [])

    def _codes(self, stage: int, module: Module, resolution: int | None) -> list[list[int]]:
        rows = []
        index = {tuple(v): {value: k for k, value in enumerate(v)} for _, v in self.layer_categories}
        for position, choice in enumerate(module):
            row = [index[tuple(values)][value] for (_, values), value in
                   zip(self.layer_categories, self.layer_values(stage, choice), strict=True)]
            row += [stage, position]
            if self.resolutions:
                row.append(self._resolution_code(resolution))
            rows.append(row)
        return rows

    def _resolution_code(self, resolution: int | None) -> int:
        if resolution not in self.resolutions:
            raise ValueError(f"{self.space}: resolution {resolution} is not one AutoBuild knows "
                             f"({self.resolutions[0]}-{self.resolutions[-1]})")
        return self.resolutions.index(resolution)

    def sequence(self, x: Sequence[int], resolution: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The network's sequence graph: (codes (layers, categories), forward edges (2, layers - 1))."""
        return _chain([row for stage, module in enumerate(self.modules(x))
                       for row in self._codes(stage, module, resolution)])

    def module_graph(self, stage: int, module: Module, resolution: int | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """One stage's layers alone: its last node at hop ``len(module) - 1`` scores the module."""
        return _chain(self._codes(stage, module, resolution))

    def stage_spans(self, x: Sequence[int]) -> list[tuple[int, int]]:
        """(first node, last node) of each stage in ``sequence(x)``."""
        spans, start = [], 0
        for module in self.modules(x):
            spans.append((start, start + len(module) - 1))
            start += len(module)
        return spans

    def describe(self, stage: int, module: Module) -> str:
        return ",".join(self.stages[stage].choices[c] for c in module)

    def parse(self, stage: int, text: str, where: str = "") -> Module:
        """Inverse of ``describe``; a ValueError naming the stage, the text and what it may hold."""
        allowed = self.stages[stage]
        names = text.split(",")
        unknown = [n for n in names if n not in allowed.choices]
        if unknown or len(names) not in allowed.lengths:
            lengths = "/".join(map(str, allowed.lengths))
            raise ValueError(f"{where + ': ' if where else ''}stage {stage + 1} module {text!r} is not {lengths} "
                             f"comma-separated layers of {', '.join(allowed.choices)}")
        return tuple(allowed.choices.index(n) for n in names)


def _chain(codes: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Layers in order: their codes, and an edge from each to the next."""
    n = len(codes)
    return (np.array(codes, dtype=np.int64),
            np.array([np.arange(n - 1), np.arange(1, n)], dtype=np.int64).reshape(2, -1))


def sequence_samples(family: SequenceFamily, encodings: Sequence[Sequence[int]],
                     resolutions: Sequence[int] | int | None, y: np.ndarray | None = None) -> Samples:
    """The ``sequence`` view; ``resolutions``: one input size per network, or one for all (families without
    a resolution category ignore it)."""
    sizes = resolutions if isinstance(resolutions, Sequence) else [resolutions] * len(encodings)
    return Samples(sequence=graph_array([family.sequence(x, size if family.resolutions else None)
                                         for x, size in zip(encodings, sizes, strict=True)]),
                   y=None if y is None else np.asarray(y, dtype=np.float64),
                   family=np.full(len(encodings), family.space, dtype=object))


class MacroSequences(SequenceFamily):
    """NAS-Bench-Macro: stages of 2, 3, 3 layers, each id / MBv2 k3 e3 / MBv2 k5 e6 (identity: no kernel)."""

    space = "nas-bench-macro"
    layer_categories = (("kernel", ("none", "3", "5")), ("expand", ("none", "3", "6")))

    @property
    def stages(self) -> tuple[Stage, ...]:
        from hwnas.controller.spaces.nas_bench_macro import OPS, STAGES

        return tuple(Stage((n,), OPS) for n in STAGES)

    def layer_values(self, stage: int, choice: int) -> tuple[str, ...]:
        return (("none", "none"), ("3", "3"), ("5", "6"))[choice]

    def modules(self, x: Sequence[int]) -> list[Module]:
        from hwnas.controller.spaces.nas_bench_macro import STAGES

        x, out, start = list(x), [], 0
        for n in STAGES:
            out.append(tuple(x[start:start + n]))
            start += n
        return out

    def assemble(self, modules: Sequence[Module]) -> list[int]:
        return [c for module in modules for c in module]


class OfaMbv3Sequences(SequenceFamily):
    """OFA-MobileNetV3: five stages of 2-4 MBConv layers, kernel {3,5,7} x expansion {3,4,6}; the input
    resolution (128-224 in steps of 4, as HELP's table) is a category of every node."""

    space = "ofa-mbv3"
    layer_categories = (("kernel", ("3", "5", "7")), ("expand", ("3", "4", "6")))
    resolutions = tuple(range(128, 225, 4))

    @property
    def stages(self) -> tuple[Stage, ...]:
        from hwnas.controller.spaces.ofa_mbv3 import DEPTHS, EXPANDS, KERNELS, STAGES

        names = tuple(f"k{k}e{e}" for k in KERNELS for e in EXPANDS)
        return tuple(Stage(DEPTHS, names) for _ in range(STAGES))

    def layer_values(self, stage: int, choice: int) -> tuple[str, ...]:
        return str((3, 5, 7)[choice // 3]), str((3, 4, 6)[choice % 3])

    def modules(self, x: Sequence[int]) -> list[Module]:
        from hwnas.controller.spaces.ofa_mbv3 import DEPTHS, MAX_DEPTH, STAGES

        x = list(x)
        out = []
        for s in range(STAGES):
            depth = DEPTHS[x[s]]
            out.append(tuple(x[STAGES + s * MAX_DEPTH + j] * 3 + x[STAGES + 20 + s * MAX_DEPTH + j]
                             for j in range(depth)))
        return out

    def assemble(self, modules: Sequence[Module]) -> list[int]:
        from hwnas.controller.spaces.ofa_mbv3 import DEPTHS, MAX_DEPTH

        depth, ks, es = [], [0] * 20, [0] * 20
        for s, module in enumerate(modules):
            depth.append(DEPTHS.index(len(module)))
            for j, choice in enumerate(module):
                ks[s * MAX_DEPTH + j], es[s * MAX_DEPTH + j] = choice // 3, choice % 3
        return get_space(self.space).canonical(depth + ks + es)


FAMILIES: dict[str, type[SequenceFamily]] = {f.space: f for f in (MacroSequences, OfaMbv3Sequences)}


def sequence_family(space: str) -> SequenceFamily:
    try:
        return FAMILIES[space]()
    except KeyError:
        raise ValueError(f"AutoBuild needs a sequence family (stages of layers with per-layer features); space "
                         f"{space!r} is not one: use one of {', '.join(FAMILIES)}") from None
