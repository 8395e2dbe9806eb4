"""Helpers every runtime backend shares: input data for timing, versions, short error messages."""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from collections.abc import Sequence

import numpy as np

from hwnas.device_agent.power.base import Availability


def random_input(shape: tuple[int, ...], dtype: str, rng: np.random.Generator) -> np.ndarray:
    """Inputs for timing: normal floats, small non-negative integers."""
    if dtype.startswith("float"):
        return rng.standard_normal(shape).astype(dtype)
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    return rng.integers(0, 8, shape).astype(dtype)


@functools.cache
def installed_version(distribution: str) -> str:
    """Package metadata lookups scan site-packages; every result carries the version, so look once."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def missing_modules(modules: Sequence[str], extra: str) -> Availability | None:
    """An unavailable verdict naming the modules not installed (and the extra that brings them), or None."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return None
    return Availability(False, f"not installed: {', '.join(missing)} (pip install 'hwnas[{extra}]')")
