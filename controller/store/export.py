"""Dataset export: one row per architecture x device key (x protocol), schema in docs/dataset.md."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hwnas.controller.reporting.spreadsheet import spreadsheet_safe
from hwnas.controller.store import schema
from hwnas.controller.store.records import RECORD_COLUMNS
from hwnas.controller.store.store import Store

ARCH_COLUMNS = ("arch_id", "space", "arch", "encoding", "macs", "params")  # the architecture each row is of
# The architecture, then the record's columns (RECORD_COLUMNS), its job_key last as the row's identity.
COLUMNS = (*ARCH_COLUMNS, *(c.name for c in RECORD_COLUMNS if c.name not in ("job_key", "arch_id")), "job_key")
FORMATS = ("csv", "parquet")
def rows(store: Store, device_key: str | None = None, exclude_warned: bool = False) -> Iterator[dict[str, Any]]:
    for row in store.measurements(device_key, exclude_warned):
        yield {column: row[column] for column in COLUMNS}


def export(store: Store, path: Path, fmt: str, device_key: str | None = None, exclude_warned: bool = False) -> int:
    """Write the dataset; returns the number of rows. ``exclude_warned`` leaves out records with warnings."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {fmt!r}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder; name the file to write, e.g. {path / f'dataset.{fmt}'}")
    data = list(rows(store, device_key, exclude_warned))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return _write(data, path, fmt)
    except OSError as exc:
        if path.is_file():  # a half-written export must not pass for a whole one
            path.unlink()
        raise OSError(f"cannot write {path}: {exc.strerror or exc}") from None


def _write(data: list[dict[str, Any]], path: Path, fmt: str) -> int:
    if fmt == "csv":
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows({k: spreadsheet_safe(v) for k, v in row.items()} for row in data)
        return len(data)
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(data, schema=_arrow_schema(pa)) if data else _arrow_schema(pa).empty_table()
    table = table.replace_schema_metadata({"hwnas.dataset": json.dumps({"columns": list(COLUMNS), "version": 1})})
    pq.write_table(table, path)
    return len(data)


def column_type(column: str) -> type:
    """The Python type of an export column: the store table's own column type (measurements first, then
    architectures), so the export cannot drift from the table it is read from."""
    table = schema.measurements if column in schema.measurements.c else schema.architectures
    return table.c[column].type.python_type


def _arrow_schema(pa):
    arrow = {int: pa.int64(), float: pa.float64(), bool: pa.bool_(), str: pa.string()}
    return pa.schema([(c, arrow[column_type(c)]) for c in COLUMNS])
