"""Macro spaces whose every variable picks the op of one layer (NAS-Bench-Macro, FBNet): the shared plumbing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from hwnas.controller.spaces.base import SearchSpace


class LayerChoiceSpace(SearchSpace):
    """Variable i is the index of layer i+1's op in ``ops``; ``decode`` names them (``{"layers": [...]}``).
    Subclasses give ``ops``, ``layers``, the default classifier width and image size, and build the network."""

    ops: tuple[str, ...]
    layers: int
    default_classes: int
    default_resolution: int = 32

    def __init__(self, num_classes: int | None = None, resolution: int | None = None) -> None:
        self.num_classes = num_classes or self.default_classes
        self.resolution = resolution or self.default_resolution

    @property
    def n_var(self) -> int:
        return self.layers

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(self.layers, dtype=int), np.full(self.layers, len(self.ops) - 1, dtype=int)

    def variable_name(self, i: int) -> str:
        return f"layer {i + 1}"

    def validate(self, x: Sequence[int]) -> list[int]:
        return self._check_length(x)

    def decode(self, x: Sequence[int]) -> dict[str, list[str]]:
        return {"layers": [self.ops[v] for v in self.validate(x)]}

    def encode(self, arch: Mapping[str, Sequence[str]]) -> list[int]:
        layers = list(arch.get("layers", ()))
        for i, op in enumerate(layers):
            if op not in self.ops:
                raise ValueError(f"{self.name} layer {i + 1}: unknown op {op!r}; allowed: {list(self.ops)}")
        return self.validate([self.ops.index(op) for op in layers])

    def size(self) -> int:
        return len(self.ops) ** self.layers
