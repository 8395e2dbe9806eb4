"""The packaged tables' device latency columns: every device that measured a family, as transfer sources.

A new device learns from the devices that measured the same architectures before it (few-shot transfer,
``hwnas.predictors.source_transfer``), and its first measurements are chosen where those devices disagree most
(``hwnas.predictors.selection``). The packaged tables (``hwnas.controller.data``) hold such devices for NB-201
(HW-NAS-Bench, LatBench), FBNet and OFA-MobileNetV3 (HELP); this module reads them once per table, rows
aligned across columns.
"""

from __future__ import annotations

import csv
import functools
import gzip
from dataclasses import dataclass

import numpy as np

from hwnas.controller.data import TABLES, table_path
from hwnas.controller.learning.data import read_space_table, space_samples
from hwnas.controller.spaces import get_space
from hwnas.controller.spaces.base import SearchSpace
from hwnas.predictors.samples import Samples

# simulated accelerators whose latency is a sum of per-edge costs by construction (the NB-201 README): they say
# nothing about a learned predictor and are no device a lab adds
SIMULATED = ("lat_ms_eyeriss", "lat_ms_fpga")


@dataclass(frozen=True)
class DeviceColumns:
    """One table's architectures and each device column's latencies [ms], rows aligned."""

    table: str
    encodings: list[list[int]]
    latencies: dict[str, np.ndarray]
    resolutions: list[int] | None  # each row's input size, where the table varies it (HELP's OFA rows)


def tables_of(space: str) -> list[str]:
    """The packaged tables of ``space`` that hold device latency columns."""
    return [name for name, table in TABLES.items() if table.space == space and _columns(name)]


@functools.cache
def device_columns(table: str, simulated: bool = False) -> DeviceColumns:
    """Every measured device latency column of a packaged table (the simulated accelerators too if asked)."""
    columns = _columns(table, simulated)
    if not columns:
        raise ValueError(f"packaged table {table!r} has no device latency columns")
    space = get_space(TABLES[table].space)
    first = read_space_table(table_path(table), columns[0], space)  # decodes each row once
    rows = [r for r in _rows(table) if r[columns[0]].strip()]  # NB-201's unconnected cells have no latency
    if len(first.encodings) != len(rows):
        raise ValueError(f"{table}: {len(rows) - len(first.encodings)} rows do not decode or lack a latency")
    latencies = {c: np.array([float(r[c]) for r in rows]) for c in columns}
    bad = [c for c, y in latencies.items() if not np.all(np.isfinite(y) & (y > 0))]
    if bad:
        raise ValueError(f"{table}: column(s) {bad} hold a latency that is not a positive number")
    return DeviceColumns(table, first.encodings, latencies, first.resolutions)


def packaged_sources(space: SearchSpace) -> list[Samples]:
    """The space's packaged device latency columns as sources (rows at the space's input size, where a table
    varies it)."""
    sources = []
    for name in tables_of(space.name):
        table = device_columns(name)
        rows = np.arange(len(table.encodings))
        if table.resolutions is not None:
            rows = rows[np.asarray(table.resolutions) == getattr(space, "resolution", -1)]
        if len(rows) < 10:
            continue
        samples = space_samples(space, [table.encodings[k] for k in rows])
        sources.extend(samples.with_y(y[rows]) for y in table.latencies.values())
    return sources


def _columns(table: str, simulated: bool = False) -> list[str]:
    with gzip.open(table_path(table), "rt", newline="") as handle:
        header = next(csv.reader(handle))
    return [c for c in header if c.startswith("lat_ms_") and (simulated or c not in SIMULATED)]


def _rows(table: str) -> list[dict[str, str]]:
    with gzip.open(table_path(table), "rt", newline="") as handle:
        return list(csv.DictReader(handle))
