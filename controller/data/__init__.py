"""Data shipped with the controller (see each folder's README for provenance and licences).

Each packaged table is registered by name with the space its rows belong to, the column that names the
architecture (the space's string form) and its default accuracy column, so a search or a predictor asks
for "the table of this space" instead of knowing file names.
"""

from __future__ import annotations

import csv
import functools
import gzip
from dataclasses import dataclass
from importlib import resources
from pathlib import Path


@dataclass(frozen=True)
class Table:
    file: str  # under controller/data
    space: str  # the space whose string form the key column holds
    key: tuple[str, ...]  # the column(s) naming the architecture; several are joined by ","
    accuracy: str = ""  # the default accuracy column [%]; "" for a latency-only table
    copies: bool = False  # rows repeat one network's numbers under several keys: bench one row per network
    input_size: int = 0  # the image size the labels hold at (0: the space's default); other sizes are refused
    proxies: tuple[str, ...] = ()  # zero-cost proxy columns (a score per network, higher ranks higher)

    def key_of(self, row: dict[str, str]) -> str:
        """The architecture a row is of, in its space's string form."""
        return ",".join(row[column] for column in self.key)


_OFA_KEY = (*(f"d_s{s}" for s in range(1, 6)), *(f"ks_s{s}_b{b}" for s in range(1, 6) for b in range(1, 5)),
            *(f"e_s{s}_b{b}" for s in range(1, 6) for b in range(1, 5)))  # the 45 values, in the space's order

TABLES: dict[str, Table] = {
    "nb201": Table("nb201/nb201_latency_accuracy.csv.gz", "nb201", ("arch_str",), "acc_cifar10_test"),
    "nas-bench-macro": Table("nas_bench_macro/nas_bench_macro_cifar10.csv.gz", "nas-bench-macro", ("arch",),
                             "mean_acc", copies=True),
    "ofa-mbv3-accuracy": Table("ofa_mbv3_accuracy/ofa_mbv3_w1.0_dynast_accuracy.csv.gz", "ofa-mbv3", _OFA_KEY,
                               "top1_acc", input_size=224),
    "naslib-nb101": Table("naslib_zc/nb101_zc_cifar10.csv.gz", "nb101", ("adjacency", "ops"), "val_accuracy",
                          copies=True, proxies=("epe_nas", "fisher", "grad_norm", "grasp", "jacov", "l2_norm",
                                                "plain", "snip", "synflow")),
    "help-fbnet": Table("help_latency/fbnet_latency.csv.gz", "fbnet", tuple(f"l{i:02d}" for i in range(1, 23))),
    # Rows at 25 input sizes (column ``resolution``); width multiplier unstated: read as layer sequences only.
    "help-ofa-mbv3": Table("help_latency/ofa_mbv3_latency.csv.gz", "ofa-mbv3", _OFA_KEY),
}


def get_table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise ValueError(f"no packaged table {name!r}; packaged: {', '.join(TABLES)}") from None


def table_path(name: str) -> Path:
    """The packaged table's file (a .csv.gz)."""
    return Path(str(resources.files("hwnas.controller.data").joinpath(get_table(name).file)))


@functools.cache
def table_rows(name: str) -> list[dict[str, str]]:
    """The table's rows as CSV strings, in file order."""
    with gzip.open(table_path(name), "rt", newline="") as text:
        return list(csv.DictReader(text))


def nb201_table_path() -> Path:
    """The packaged NAS-Bench-201 accuracy/latency table (a .csv.gz; provenance in nb201/README.md)."""
    return table_path("nb201")


def nb201_table() -> list[dict[str, str]]:
    """The NAS-Bench-201 table (15,625 rows, row order = NB-201 index) as CSV rows of strings."""
    return table_rows("nb201")
