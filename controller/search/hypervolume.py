"""Hypervolume of measured points, with the normalisation a run stores so runs can be compared.

Objectives are in minimisation form (``Objective.sign`` applied). Each is scaled to [0, 1] between the
run's ``lower`` and ``upper`` bounds, and the hypervolume is taken against the reference point
``ref`` (1.1 in every normalised coordinate by default, so the bounds' worst corner still counts).
Bounds come from ``--hv-bounds`` or, by default, from the run's first (random) population.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hwnas.controller.errors import SettingError


def pareto_mask(F: np.ndarray) -> np.ndarray:
    """True for the rows of F (minimisation) that no other row dominates."""
    F = np.asarray(F, dtype=np.float64)
    keep = np.ones(len(F), dtype=bool)
    for i in range(len(F)):
        if keep[i]:
            dominated = np.all(F[i] <= F, axis=1) & np.any(F[i] < F, axis=1)
            keep[dominated] = False
    return keep


@dataclass(frozen=True)
class HvSpace:
    lower: np.ndarray
    upper: np.ndarray
    ref: np.ndarray

    @classmethod
    def from_points(cls, F: np.ndarray, margin: float = 0.1) -> HvSpace:
        F = np.asarray(F, dtype=np.float64)
        lower, upper = F.min(axis=0), F.max(axis=0)
        upper = np.where(upper > lower, upper, lower + np.maximum(np.abs(lower), 1.0) * 1e-6)
        return cls(lower, upper, np.full(F.shape[1], 1.0 + margin))

    @classmethod
    def from_dict(cls, data: dict) -> HvSpace:
        return cls(np.asarray(data["lower"], dtype=np.float64), np.asarray(data["upper"], dtype=np.float64),
                   np.asarray(data["ref"], dtype=np.float64))

    def to_dict(self) -> dict[str, list[float]]:
        return {"lower": self.lower.tolist(), "upper": self.upper.tolist(), "ref": self.ref.tolist()}

    def normalise(self, F: np.ndarray) -> np.ndarray:
        return (np.asarray(F, dtype=np.float64) - self.lower) / (self.upper - self.lower)

    def hypervolume(self, F: np.ndarray) -> float:
        from pymoo.indicators.hv import HV

        F = np.asarray(F, dtype=np.float64).reshape(-1, len(self.ref))
        if len(F) == 0:
            return 0.0
        front = self.normalise(F[pareto_mask(F)])
        front = front[np.all(front < self.ref, axis=1)]
        return float(HV(ref_point=self.ref)(front)) if len(front) else 0.0

    def trace(self, F: np.ndarray) -> list[float]:
        """The hypervolume after each row in turn (rows in evaluation order)."""
        F = np.asarray(F, dtype=np.float64)
        out, front = [], np.empty((0, F.shape[1]))
        for row in F:
            if not np.any(np.all(front <= row, axis=1) & np.any(front < row, axis=1)):
                front = np.vstack([front[~(np.all(row <= front, axis=1) & np.any(row < front, axis=1))], row])
            out.append(self.hypervolume(front))
        return out


def parse_bounds(text: str, names: Sequence[str], signs: Sequence[float]) -> HvSpace:
    """``--hv-bounds latency=0:20,accuracy=0:100`` (natural units) -> an HvSpace in minimisation form."""
    given: dict[str, tuple[float, float]] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, span = part.partition("=")
        low, sep2, high = span.partition(":")
        try:
            if not sep or not sep2:
                raise ValueError
            given[name] = (float(low), float(high))
        except ValueError:
            raise SettingError("hv_bounds", f": {part!r} must look like NAME=LOW:HIGH") from None
        if name not in names:
            raise SettingError("hv_bounds", f"names {name!r}, which is not one of the objectives {', '.join(names)}")
        if not given[name][0] < given[name][1]:
            raise SettingError("hv_bounds", f": {name} needs LOW < HIGH, got {span}")
    missing = [n for n in names if n not in given]
    if missing:
        raise SettingError("hv_bounds", f"must bound every objective; missing {', '.join(missing)}")
    low = np.array([min(given[n][0] * s, given[n][1] * s) for n, s in zip(names, signs, strict=True)])
    high = np.array([max(given[n][0] * s, given[n][1] * s) for n, s in zip(names, signs, strict=True)])
    return HvSpace(low, high, np.full(len(names), 1.1))
