"""Data shipped with the controller (see each folder's README for provenance and licences)."""

from __future__ import annotations

import csv
import functools
import gzip
from importlib import resources
from pathlib import Path


def nb201_table_path() -> Path:
    """The packaged NAS-Bench-201 accuracy/latency table (a .csv.gz; provenance in nb201/README.md)."""
    return Path(str(resources.files("controller.data").joinpath("nb201/nb201_latency_accuracy.csv.gz")))


@functools.cache
def nb201_table() -> list[dict[str, str]]:
    """The NAS-Bench-201 table (15,625 rows, row order = NB-201 index) as CSV rows of strings."""
    with gzip.open(nb201_table_path(), "rt", newline="") as text:
        return list(csv.DictReader(text))
