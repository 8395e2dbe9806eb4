"""The objectives AutoBuild learns from: one value per network, from a table or from what agents measured.

An objective is written ``NAME=SOURCE``:

- ``acc=table`` — the space's packaged accuracy table (its default column), ``acc=table:COLUMN`` another of
  its columns, ``lat=table:TABLE:COLUMN`` a column of another packaged table of the space (e.g.
  ``help-ofa-mbv3:lat_ms_v100_1``);
- ``lat=db:KEY`` — the median latency the store holds for device key KEY (``--db``), i.e. real agents;
- ``lat=file:PATH:COLUMN`` — a column of a CSV/Parquet file of the space's architectures (e.g. HELP's).

Values are kept per distinct network and input size (``space.network_key``, the table's ``resolution``
column or the measured input shape, else the space's size): a table that copies one network under several
keys, or a device measured twice, gives one value.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwnas.controller.errors import SettingError
from hwnas.controller.spaces.base import SearchSpace

NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


@dataclass(frozen=True)
class Objective:
    name: str
    source: str  # "table", "table:COLUMN", "db:KEY" or "file:PATH:COLUMN"

    @property
    def device_key(self) -> str | None:
        """The device key a ``db:`` objective is measured on (its networks can be measured through the fleet)."""
        kind, _, rest = self.source.partition(":")
        return rest if kind == "db" else None

    @property
    def lower_is_better(self) -> bool:
        """Measured objectives (latency) and latency columns: a target maximises their negation."""
        return self.device_key is not None or "lat" in self.source.rpartition(":")[2].lower()

    def text(self) -> str:
        return f"{self.name}={self.source}"


def parse_objective(text: str) -> Objective:
    name, sep, source = text.partition("=")
    name, source = name.strip(), source.strip()
    if not sep or not name or not source:
        raise SettingError("objective", f"{text!r} must look like NAME=SOURCE, e.g. acc=table or lat=db:pi4-ort")
    if not set(name) <= NAME_CHARS or name[0].isdigit():
        raise SettingError("objective", f"{text!r}: a name is letters, digits and _ (not first a digit)")
    kind, _, rest = source.partition(":")
    if kind == "table" or (kind == "db" and rest) or (kind == "file" and rest.count(":") >= 1 and
                                                       all(rest.rpartition(":")[::2])):
        return Objective(name, source)
    raise SettingError("objective", f"{text!r}: the source must be table, table:COLUMN, db:KEY or file:PATH:COLUMN")


Key = tuple[int, tuple[int, ...]]  # (input size, network key)
Values = dict[Key, tuple[list[int], float]]  # key -> (encoding, value)


@dataclass
class Labelled:
    """Networks with a value of every objective: encodings (one per distinct network and input size), their
    input sizes, and (networks, objectives) values."""

    space: str
    encodings: list[list[int]]
    resolutions: list[int]
    names: list[str]
    values: np.ndarray

    def take(self, index: np.ndarray) -> Labelled:
        return Labelled(self.space, [self.encodings[i] for i in index], [self.resolutions[i] for i in index],
                        self.names, self.values[index])

    def column(self, name: str) -> np.ndarray:
        return self.values[:, self.names.index(name)]


def _table_values(space: SearchSpace, path: Path, column: str) -> Values:
    from hwnas.controller.learning.data import read_space_table

    table = read_space_table(path, column, space, one_per_network=True)
    sizes = table.resolutions or [space.resolution] * len(table.encodings)
    return {(size, space.network_key(x)): (x, float(v))
            for x, v, size in zip(table.encodings, table.y, sizes, strict=True)}


def _store_values(space: SearchSpace, store, device_key: str) -> Values:
    """Median measured latency per network of ``space`` and input size on ``device_key``."""
    found: dict[Key, tuple[list[int], list[float]]] = {}
    for row in store.measurements(device_key):
        if row["space"] != space.name:
            continue
        shape = json.loads(row["input_shape_json"] or "[]")
        x = [int(v) for v in row["encoding"].split()]
        key = (int(shape[-1]) if shape else space.resolution, space.network_key(x))
        found.setdefault(key, (x, []))[1].append(float(row["latency_ms"]))
    return {key: (x, float(np.median(v))) for key, (x, v) in found.items()}


def _packaged_table(objective: Objective, space: SearchSpace, rest: str) -> tuple[str, str]:
    """(table name, column) of a ``table[:TABLE]:COLUMN`` source."""
    from hwnas.controller.data import TABLES

    name, _, column = rest.rpartition(":")
    if not name:
        name = space.accuracy_table or space.label_table
        if not name:
            raise SettingError("objective", f"{objective.text()}: space {space.name} has no packaged table; use "
                                            "file:PATH:COLUMN or db:KEY")
    mine = sorted(n for n, t in TABLES.items() if t.space == space.name)
    if name not in mine:
        raise SettingError("objective", f"{objective.text()}: {name!r} is not a packaged table of {space.name}; "
                                        f"its tables: {', '.join(mine) or 'none'}")
    return name, column or TABLES[name].accuracy


def objective_values(objective: Objective, space: SearchSpace, store=None) -> Values:
    """{(input size, network key): (encoding, value)} of one objective."""
    from hwnas.controller.data import table_path

    kind, _, rest = objective.source.partition(":")
    if kind == "table":
        name, column = _packaged_table(objective, space, rest)
        if not column:
            raise SettingError("objective", f"{objective.text()}: table {name} has no default column; name one "
                                            f"(table:{name}:COLUMN)")
        return _table_values(space, table_path(name), column)
    if kind == "db":
        if store is None:
            raise SettingError("db", f"is needed for objective {objective.text()} (the store its agents wrote)")
        return _store_values(space, store, rest)
    path, _, column = rest.rpartition(":")
    if not Path(path).is_file():
        raise SettingError("objective", f"{objective.text()}: no such file {path}")
    return _table_values(space, Path(path), column)


def labelled(space: SearchSpace, objectives: Sequence[Objective], store=None, minimum: int = 0) -> Labelled:
    """The networks every objective has a value for. SettingError naming the objective with too few when
    fewer than ``minimum`` remain."""
    if len({o.name for o in objectives}) < len(objectives):
        raise SettingError("objective", f"names must differ: {[o.name for o in objectives]}")
    tables = [objective_values(o, space, store) for o in objectives]
    for objective, table in zip(objectives, tables, strict=True):
        if len(table) < minimum:
            raise SettingError("objective", f"{objective.text()} has values for {len(table)} {space.name} network(s); "
                                            f"AutoBuild needs at least {minimum}"
                               + (f": measure {minimum - len(table)} more on {objective.device_key} "
                                  f"(`hwnas latbench build --space {space.name} --devices {objective.device_key}`)"
                                  if objective.device_key else ""))
    keys = [k for k in tables[0] if all(k in t for t in tables[1:])]
    if len(keys) < minimum:
        raise SettingError("objective", f"only {len(keys)} network(s) have a value of every objective "
                                        f"({', '.join(o.text() for o in objectives)}); AutoBuild needs at least "
                                        f"{minimum}")
    return Labelled(space.name, [tables[0][k][0] for k in keys], [k[0] for k in keys], [o.name for o in objectives],
                    np.array([[t[k][1] for t in tables] for k in keys], dtype=np.float64).reshape(len(keys), -1))
