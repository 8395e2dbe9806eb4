"""Import public latency tables into the store, so predictors can learn from them next to our own data.

Formats:
- ``nb201-table``: the HELP / HW-NAS-Bench NB-201 table layout of ``controller/data/nb201`` (``arch_str`` or
  ``nb201_index`` plus one ``lat_ms_*`` column per device), plain or gzipped CSV.
- ``eagle-pickle``: a LatBench/Eagle measurement pickle, ``{arch vector: seconds}`` (or a list of pairs).
  Pickles can run code when loaded, so this one is read by an unpickler that allows numpy scalars and
  nothing else; any other class is refused before it is created.
- ``hwnas``: our own CSV or Parquet exports (``hwnas latbench export``).

Imported rows carry ``protocol = agent_name = "imported:<source>"`` and only the headline latency; the
per-sample statistics are null. Several encodings can prune to one CG (one ``arch_id``); their later rows
are counted as duplicates, not stored twice.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import pickle
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwnas.controller.reporting.spreadsheet import from_spreadsheet_safe
from hwnas.controller.spaces import get_space
from hwnas.controller.spaces.nb201 import NasBench201
from hwnas.controller.store.records import RECORD_COLUMNS, ArchRecord, MeasurementRecord, make_job_key
from hwnas.controller.store.store import Store

FORMATS = ("nb201-table", "eagle-pickle", "hwnas")


@dataclass
class ImportReport:
    rows: int = 0
    added: int = 0
    duplicates: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def __str__(self) -> str:
        skipped = ", ".join(f"{n} {why}" for why, n in self.skipped.items()) or "none"
        return f"{self.rows} rows read, {self.added} added, {self.duplicates} duplicates, skipped: {skipped}"


# Columns an hwnas export must have to be imported (later versions added model_format, the power
# sampling period and idle baseline, warnings_json, cold start, memory and op profiles; they are optional).
EXPORT_REQUIRED = (
    "arch_id", "space", "encoding", "device_key", "backend", "protocol", "protocol_params_json",
    "protocol_details_json", "batch_size", "input_shape_json", "latency_ms", "count", "min_ms", "mean_ms",
    "median_ms", "p90_ms", "p99_ms", "max_ms", "std_ms", "power_available", "power_source", "mean_power_w",
    "energy_per_inference_mj", "power_unavailable_reason", "environment_json", "agent_name", "agent_version",
    "queue_wait_ms", "started_unix_ns", "finished_unix_ns", "replayed", "job_key",
)


class RestrictedUnpickler(pickle.Unpickler):
    """Builds dicts, lists, tuples, numbers, strings and numpy scalars; refuses every other class."""

    ALLOWED = frozenset({("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                         ("numpy._core.multiarray", "scalar")})

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: only numpy scalars are allowed in "
                                     "measurement pickles")


def load_eagle_pickle(path: Path) -> list[tuple[list[int], float]]:
    """(arch vector, seconds) pairs from an Eagle/LatBench pickle, read without running foreign code."""
    with path.open("rb") as handle:
        try:
            data = RestrictedUnpickler(handle).load()
        except pickle.UnpicklingError:
            raise
        except Exception as exc:  # an allowed class called with bad arguments, a truncated stream, ...
            raise pickle.UnpicklingError(f"{path} is not a measurement pickle: {type(exc).__name__}: {exc}") from None
    pairs = data.items() if isinstance(data, dict) else data
    out = []
    for k, pair in enumerate(pairs):
        try:
            vector, value = pair
        except (TypeError, ValueError):
            raise ValueError(f"{path}: entry {k} is not an (arch vector, latency) pair") from None
        if isinstance(value, (list, tuple)):
            raise ValueError(f"{path}: entry {k} holds raw per-run timings; import the processed file "
                             "(one latency per architecture)")
        out.append(([int(v) for v in vector], float(value)))
    return out


def _nb201_records(store: Store, space: NasBench201, items: Iterable[tuple[list[int], float]], device_key: str,
                   source: str, report: ImportReport) -> None:
    archs: dict[str, ArchRecord] = {}
    records = []
    for x, latency_ms in items:
        report.rows += 1
        if not math.isfinite(latency_ms) or latency_ms <= 0:
            report.skip("without a latency")
            continue
        if not space.is_connected(x):
            report.skip("unconnected cells")
            continue
        graph = space.to_graph(x)
        archs.setdefault(graph.arch_id, ArchRecord(graph.arch_id, space.name, space.to_string(x),
                                                   " ".join(map(str, x)), graph.macs(), graph.params(),
                                                   graph.to_json()))
        records.append(_imported(graph.arch_id, device_key, source, latency_ms, list(graph.input_shape)))
    store.add_architectures(archs.values())
    report.added, report.duplicates = store.add_records(records)


def _imported(arch_id: str, device_key: str, source: str, latency_ms: float, input_shape: list[int]):
    protocol = f"imported:{source}"
    return MeasurementRecord(job_key=make_job_key(arch_id, device_key, "imported", protocol, {}, 1), arch_id=arch_id,
                             device_key=device_key, backend="imported", protocol=protocol, protocol_params={},
                             batch_size=1, input_shape=input_shape, latency_ms=latency_ms, stats={},
                             agent_name=protocol, agent_version="", started_unix_ns=0, finished_unix_ns=0)


def _csv_rows(path: Path) -> Iterator[dict[str, str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as handle:
        yield from csv.DictReader(handle)


def import_nb201_table(store: Store, path: Path, column: str, device_key: str, source: str | None = None,
                       num_classes: int = 10) -> ImportReport:
    space = NasBench201(num_classes=num_classes)
    report = ImportReport()

    def items() -> Iterator[tuple[list[int], float]]:
        for k, row in enumerate(_csv_rows(path)):
            if column not in row:
                raise ValueError(f"{path} has no column {column!r}; columns: {sorted(row)}")
            if row.get("arch_str"):
                x = space.from_string(row["arch_str"])
            elif row.get("nb201_index"):
                x = space.from_index(int(row["nb201_index"]))
            else:
                raise ValueError(f"{path} row {k} has neither arch_str nor nb201_index")
            yield x, float(row[column]) if row[column] else math.nan

    _nb201_records(store, space, items(), device_key, source or f"{path.name}:{column}", report)
    return report


def import_eagle_pickle(store: Store, path: Path, device_key: str, source: str | None = None,
                        num_classes: int = 10) -> ImportReport:
    space = NasBench201(num_classes=num_classes)
    report = ImportReport()
    pairs = [(space.from_eagle_vector(v), seconds * 1e3) for v, seconds in load_eagle_pickle(path)]
    _nb201_records(store, space, pairs, device_key, source or path.name, report)
    return report


def import_hwnas_export(store: Store, path: Path) -> ImportReport:
    """Rows of our own export; each architecture is rebuilt from its space and checked against its arch_id."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(path).to_pylist()
    else:
        rows = [{k: from_spreadsheet_safe(v) for k, v in row.items()}
                for row in csv.DictReader(io.StringIO(path.read_text()))]
    missing = [c for c in EXPORT_REQUIRED if rows and c not in rows[0]]
    if missing:
        raise ValueError(f"{path} is not an hwnas export: it lacks the column(s) {missing} (see docs/dataset.md)")
    report = ImportReport()
    archs: dict[str, ArchRecord] = {}
    records = []
    spaces: dict[tuple[str, tuple[int, ...]], Any] = {}
    for number, row in enumerate(rows, start=2):  # CSV line numbers: the header is line 1
        report.rows += 1
        try:
            graph, space, x = _export_row_graph(row, spaces)
            record = _from_export_row(row)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise ValueError(f"{path}, row {number}: {type(exc).__name__}: {exc}; nothing was imported") from None
        if graph.arch_id != row["arch_id"]:
            raise ValueError(f"{path}: {row['space']} encoding {row['encoding']} rebuilds to a different arch_id "
                             f"than the exported {row['arch_id'][:16]} (other classes or options)")
        archs.setdefault(graph.arch_id, ArchRecord(graph.arch_id, space.name, space.to_string(x), row["encoding"],
                                                   graph.macs(), graph.params(), graph.to_json()))
        records.append(record)
    store.add_architectures(archs.values())
    report.added, report.duplicates = store.add_records(records)
    return report


def _export_row_graph(row: dict[str, Any], spaces: dict[tuple[str, tuple[int, ...]], Any]):
    """The CG an export row's space and encoding rebuild to, with the space and the encoding."""
    shape = json.loads(row["input_shape_json"])
    key = (row["space"], tuple(shape))
    if key not in spaces:
        spaces[key] = get_space(row["space"], **get_space(row["space"]).options_for_input(shape))
    space = spaces[key]
    x = [int(v) for v in str(row["encoding"]).split()]
    return space.to_graph(x), space, x


def _number(value: Any, cast=float):
    if value in (None, "") or (isinstance(value, float) and math.isnan(value)):
        return None
    return cast(value)


# What an export written before a column existed means for it: the value older rows took.
_EXPORT_DEFAULTS = {c.name: c.before for c in RECORD_COLUMNS if c.since > 1}


def _from_export_row(row: dict[str, Any]) -> MeasurementRecord:
    """An export row (CSV text or Parquet values) typed by the store's own column types, read as a record."""
    typed: dict[str, Any] = {}
    for column in RECORD_COLUMNS:
        if column.name == "recorded_at_unix_s":
            continue
        value = row.get(column.name, _EXPORT_DEFAULTS.get(column.name))
        if column.kind is bool:
            typed[column.name] = str(value).lower() in ("true", "1")
        elif column.kind is str:
            typed[column.name] = "" if _number(value, str) is None else str(value)
        else:
            typed[column.name] = _number(value, column.kind)
    return MeasurementRecord.from_row({**typed, "recorded_at_unix_s": None})
