"""``replay``: answers latency from a recorded table instead of running the model.

It turns any public latency dataset (a device column of the NB-201 table, a LatBench export) into a
reproducible "device" for search experiments. The controller writes the architecture's string form into
every model it exports (ONNX metadata ``hwnas.arch``); this backend looks that string up in the table's
key column and answers the recorded value of ``column``. Nothing is timed, so every result says so: its
protocol is ``replay``, its runtime names the table, column and the table's sha256, and it carries a
warning. The controller marks such records ``replayed``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import math
from pathlib import Path

from hwnas.device_agent.backends.base import Answer, AnsweredModel, Backend
from hwnas.device_agent.errors import InvalidInput
from hwnas.device_agent.onnx_metadata import metadata_props
from hwnas.device_agent.power.base import Availability

ARCH_KEY = "hwnas.arch"  # the metadata key the controller's ONNX export writes


class ReplayBackend(Backend):
    name = "replay"
    runtime_name = "replay"

    def __init__(self, table: str | Path = "", column: str = "", key_column: str = "") -> None:
        if not table or not column:
            raise ValueError("the replay backend needs a table and a column (--table FILE --column COL)")
        path = Path(table)
        try:
            raw = path.read_bytes()
            text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8")
        except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as exc:
            raise ValueError(f"--table {path}: cannot read it: {exc}") from None
        reader = csv.DictReader(text.splitlines())
        columns = reader.fieldnames or []
        if column not in columns:
            raise ValueError(f"--column {column!r} is not in {path}; columns: {', '.join(columns)}")
        key_column = key_column or next((c for c in ("arch_str", "arch") if c in columns), "")
        if key_column not in columns:
            raise ValueError(f"{path} needs an arch_str or arch column (or --key-column) naming each architecture")
        self.values: dict[str, float] = {}
        for row in reader:
            try:
                self.values[row[key_column]] = float(row[column])
            except (TypeError, ValueError):
                self.values[row[key_column]] = math.nan
        self.table, self.column = path, column
        self.digest = hashlib.sha256(raw).hexdigest()

    @classmethod
    def probe(cls) -> Availability:
        return Availability(True, "answers latency from a recorded table (--table FILE --column COL)")

    def runtime_version(self) -> str:  # type: ignore[override] - an instance knows its table
        return f"{self.table.name}:{self.column}@sha256:{self.digest[:16]}" if hasattr(self, "table") else ""

    def load(self, model_path: Path, threads: int) -> AnsweredModel:
        arch = metadata_props(model_path.read_bytes()).get(ARCH_KEY)
        if not arch:
            raise InvalidInput(f"the model carries no {ARCH_KEY!r} metadata: the replay backend answers only "
                               "models exported by the hwnas controller")
        if arch not in self.values:
            raise InvalidInput(f"architecture {arch} is not in the replayed table {self.table.name}")
        value = self.values[arch]
        if not (math.isfinite(value) and value > 0):
            raise InvalidInput(f"the replayed table {self.table.name} has no {self.column} value for {arch}")
        answer = Answer(value, "replay", {"replayed": 1.0}, no_energy_reason="replayed latency: nothing ran")
        return AnsweredModel(answer, f"replayed from {self.table.name} column {self.column}: not measured here")
