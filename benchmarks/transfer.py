"""Few-shot transfer to a new device (issues #5, #39): leave one device out, learn it from n samples.

Each latency column of a family's table in turn is the new device and every other column a source (their
measurements of other architectures than the test set). For n target samples the ``sources`` predictor
(the product's default transfer) is compared with the same ridge fitted from scratch: Spearman, the share
within ±10 % (BRP-NAS) and NDCG@10 on the held-out architectures, mean over seeds.

Families: ``nb201`` (the packaged HW-NAS-Bench / LatBench columns; eyeriss and fpga are left out: additive
by construction), ``help-fbnet`` (27 columns) and ``help-ofa-mbv3`` (12 GPU columns; the input resolution,
which varies by row, is one-hot encoded beside the architecture).

    python -m benchmarks.transfer [--family nb201] [--methods ridge,sources] [--seeds 5] [--samples 5,10,20,50]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from benchmarks.common import machine_line

NB201_COLUMNS = ("lat_ms_latbench_desktop_cpu_i7_7820x", "lat_ms_1080ti_1", "lat_ms_1080ti_32", "lat_ms_1080ti_256",
                 "lat_ms_gold_6226", "lat_ms_pixel3", "lat_ms_titan_rtx_256", "lat_ms_samsung_s7")
FAMILIES = ("nb201", "help-fbnet", "help-ofa-mbv3")


def family_columns(family: str):
    """(the architectures' samples with no y, {column: latencies}) of one family's table, rows aligned."""
    from controller.data import TABLES, nb201_table_path, table_path
    from controller.learning.data import nb201_samples, read_nb201_table, read_space_table, space_samples
    from controller.spaces import get_space

    if family == "nb201":
        tables = {c: read_nb201_table(nb201_table_path(), c) for c in NB201_COLUMNS}
        encodings = tables[NB201_COLUMNS[0]].encodings
        return nb201_samples(encodings, flops=False), {c: t.y for c, t in tables.items()}, encodings
    import csv
    import gzip

    with gzip.open(table_path(family), "rt") as handle:
        rows = list(csv.DictReader(handle))
    columns = [c for c in rows[0] if c.startswith("lat_ms_")]
    space = get_space(TABLES[family].space)
    first = read_space_table(table_path(family), columns[0], space)  # decodes every row once
    if len(first.encodings) != len(rows):
        raise SystemExit(f"{family}: {len(rows) - len(first.encodings)} rows do not decode or lack a latency")
    latencies = {c: np.array([float(r[c]) for r in rows]) for c in columns}
    if not all(np.all(np.isfinite(y) & (y > 0)) for y in latencies.values()):
        raise SystemExit(f"{family}: a latency column holds a value that is not a positive number")
    samples = space_samples(space, first.encodings)
    if first.resolutions is not None:  # HELP's OFA rows take several input resolutions
        sizes = np.asarray(first.resolutions)
        resolution = (sizes[:, None] == np.unique(sizes)[None, :]).astype(np.float32)
        samples = dataclasses.replace(samples, encoding=np.hstack([samples.encoding, resolution]))
    return samples, latencies, first.encodings


def run(family: str, target: str, methods: list[str], sizes: list[int], seeds: int, n_test: int = 2000,
        pretrain: int = 2000, rows: int | None = None) -> list:
    """The learning-curve points of one target column, every other column of the family a source (the first
    ``rows`` architectures only, where given)."""
    from predictors.transfer import curve

    samples, columns, _ = family_columns(family)
    keep = np.arange(len(samples) if rows is None else rows)
    samples = samples.take(keep)
    sources = [samples.with_y(y[keep]) for c, y in columns.items() if c != target]
    return curve(samples.with_y(columns[target][keep]), sources, sizes, range(seeds), methods, n_test, pretrain)


def main() -> None:
    from controller.reporting.tables import text_table
    from predictors.transfer import as_rows

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=FAMILIES, default="nb201")
    parser.add_argument("--methods", default="ridge,sources")
    parser.add_argument("--samples", default="5,10,20,50")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--targets", default="", help="columns to leave out in turn (default: every one)")
    args = parser.parse_args()
    print(f"machine: {machine_line()}\n", flush=True)
    _, columns, _ = family_columns(args.family)
    for target in args.targets.split(",") if args.targets else list(columns):
        t0 = time.perf_counter()
        points = run(args.family, target, args.methods.split(","), [int(n) for n in args.samples.split(",")],
                     args.seeds)
        print(f"{target} ({time.perf_counter() - t0:.0f} s)")
        print(text_table(as_rows(points)) + "\n", flush=True)


if __name__ == "__main__":
    main()
