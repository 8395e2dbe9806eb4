"""The output check's half of the wire contract: the input both sides run and the output values they compare.

An agent asked for an output check (``ProfileOptions.output_check``) runs the model once on this seeded
input and returns each output's values at ``positions`` (``ProfileResult.outputs``); the controller runs
its own fp32 onnxruntime reference of the same network on the same input and compares the values with a
tolerance for the format the agent ran. Both sides build input and positions from this module, so they
agree without sending tensors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

SEED = 20261207
MAX_VALUES = 256  # values compared per output: evenly spread over the flattened tensor


def check_input(shape: Sequence[int], index: int) -> np.ndarray:
    """The float32 input the check feeds to the model's ``index``-th input (standard normal, seeded)."""
    return np.random.default_rng(SEED + index).standard_normal(tuple(shape)).astype(np.float32)


def positions(size: int) -> np.ndarray:
    """Which flattened elements of an output of ``size`` elements are compared."""
    return np.unique(np.linspace(0, size - 1, min(size, MAX_VALUES)).astype(np.int64)) if size else np.zeros(0, int)


def sample(outputs: Mapping[str, np.ndarray]) -> list[tuple[str, list[int], list[float]]]:
    """(name, dims, values at ``positions``) of each output, in order."""
    out = []
    for name, array in outputs.items():
        flat = np.asarray(array, dtype=np.float64).reshape(-1)
        out.append((name, list(np.shape(array)), flat[positions(flat.size)].tolist()))
    return out
