"""What the once-for-all spaces share: ImageNet-style inputs, three choices per variable, channel rounding."""

from __future__ import annotations

import numpy as np

from hwnas.controller.spaces.base import SearchSpace


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to a multiple of ``divisor`` without losing more than 10% (MobileNet/OFA convention)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class OfaSpace(SearchSpace):
    """Base of the OFA spaces: every variable indexes one of three choices."""

    def __init__(self, resolution: int = 224, num_classes: int = 1000, batch_size: int = 1) -> None:
        if resolution < 32 or resolution % 32:
            raise ValueError(f"resolution must be a multiple of 32 and >= 32, got {resolution}")
        if num_classes < 1 or batch_size < 1:
            raise ValueError(f"num_classes and batch_size must be >= 1, got {num_classes} and {batch_size}")
        self.resolution, self.num_classes, self.batch_size = resolution, num_classes, batch_size

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(self.n_var, dtype=int), np.full(self.n_var, 2, dtype=int)
