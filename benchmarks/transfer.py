"""Few-shot transfer to a new device (issues #5, #39): leave one device out, learn it from n samples.

Each latency column of a family's table in turn is the new device and every other column a source (their
measurements of other architectures than the test set). For n target samples the ``sources`` predictor
(the product's default transfer) is compared with the same ridge fitted from scratch: Spearman, the share
within ±10 % (BRP-NAS) and NDCG@10 on the held-out architectures, mean over seeds.

Families: ``nb201`` (the packaged HW-NAS-Bench / LatBench columns; eyeriss and fpga are left out: additive
by construction), ``help-fbnet`` (27 columns) and ``help-ofa-mbv3`` (12 GPU columns; the input resolution,
which varies by row, is one-hot encoded beside the architecture).

``--sources`` restricts the sources to named columns (HELP's meta-training devices, for a comparison with its
published figures on its own split). With ``--selections random,active`` the n samples are also chosen by
``hwnas.predictors.selection`` (the reference set, then the most uncertain) rather than drawn at random, side by
side on the same test sets.

    python -m benchmarks.transfer [--family nb201] [--methods ridge,sources] [--seeds 5] [--samples 5,10,20,50]
                                  [--selections random,active] [--sources COLUMN,...] [--targets COLUMN,...]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Sequence

import numpy as np

from benchmarks.common import machine_line

FAMILIES = ("nb201", "help-fbnet", "help-ofa-mbv3")


def family_columns(family: str):
    """(the architectures' samples with no y, {column: latencies}, encodings) of one family's table, rows aligned."""
    from hwnas.controller.data import TABLES
    from hwnas.controller.learning.data import nb201_samples, space_samples
    from hwnas.controller.learning.device_tables import device_columns
    from hwnas.controller.spaces import get_space

    if family == "nb201":
        table = device_columns("nb201")
        return nb201_samples(table.encodings, flops=False), table.latencies, table.encodings
    table = device_columns(family, simulated=True)
    samples = space_samples(get_space(TABLES[family].space), table.encodings)
    if table.resolutions is not None:  # HELP's OFA rows take several input resolutions
        sizes = np.asarray(table.resolutions)
        resolution = (sizes[:, None] == np.unique(sizes)[None, :]).astype(np.float32)
        samples = dataclasses.replace(samples, encoding=np.hstack([samples.encoding, resolution]))
    return samples, table.latencies, table.encodings


def run(family: str, target: str, methods: list[str], sizes: list[int], seeds: int, n_test: int = 2000,
        pretrain: int = 2000, rows: int | None = None, selections: tuple[str, ...] = ("random",),
        source_columns: Sequence[str] = ()) -> list:
    """The learning-curve points of one target column, every other column of the family a source (or only
    ``source_columns``; the first ``rows`` architectures only, where given)."""
    from hwnas.predictors.transfer import curve

    samples, columns, _ = family_columns(family)
    keep = np.arange(len(samples) if rows is None else rows)
    samples = samples.take(keep)
    unknown = sorted(set(source_columns) - set(columns))
    if unknown:
        raise SystemExit(f"{family} has no column(s) {unknown}")
    sources = [samples.with_y(y[keep]) for c, y in columns.items()
               if c != target and (not source_columns or c in source_columns)]
    return curve(samples.with_y(columns[target][keep]), sources, sizes, range(seeds), methods, n_test, pretrain,
                 selections=selections)


def main() -> None:
    from hwnas.controller.reporting.tables import text_table
    from hwnas.predictors.transfer import as_rows

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", choices=FAMILIES, default="nb201")
    parser.add_argument("--methods", default="ridge,sources")
    parser.add_argument("--samples", default="5,10,20,50")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--selections", default="random", help="random, active or both (comma-separated)")
    parser.add_argument("--sources", default="", help="the only columns to transfer from (default: every other)")
    parser.add_argument("--targets", default="", help="columns to leave out in turn (default: every one)")
    args = parser.parse_args()
    print(f"machine: {machine_line()}\n", flush=True)
    _, columns, _ = family_columns(args.family)
    for target in args.targets.split(",") if args.targets else list(columns):
        t0 = time.perf_counter()
        points = run(args.family, target, args.methods.split(","), [int(n) for n in args.samples.split(",")],
                     args.seeds, selections=tuple(args.selections.split(",")),
                     source_columns=[c for c in args.sources.split(",") if c])
        print(f"{target} ({time.perf_counter() - t0:.0f} s)")
        print(text_table(as_rows(points)) + "\n", flush=True)


if __name__ == "__main__":
    main()
