"""Few-shot transfer across the NB-201 table's devices (issue #5): Spearman and ±10 % vs target samples n.

Each latency column in turn is the new device; every other one is a source (eyeriss and fpga are left
out: they are additive by construction). Target: Spearman >= 0.93 with 20 target samples (HELP reports
0.932 with 10).

    python -m benchmarks.transfer [--methods ridge,sources] [--seeds 5] [--samples 10,20,50,100,900]
"""

from __future__ import annotations

import argparse
import time

from benchmarks.common import machine_line

COLUMNS = ("lat_ms_latbench_desktop_cpu_i7_7820x", "lat_ms_1080ti_1", "lat_ms_1080ti_32", "lat_ms_1080ti_256",
           "lat_ms_gold_6226", "lat_ms_pixel3", "lat_ms_titan_rtx_256", "lat_ms_samsung_s7")


def run(target: str, methods: list[str], sizes: list[int], seeds: int, n_test: int = 2000, pretrain: int = 2000,
        rows: int | None = None, config: dict | None = None) -> list:
    """The learning-curve points of one target column, every other column of ``COLUMNS`` a source."""
    import numpy as np

    from controller.data import nb201_table_path
    from controller.learning.data import nb201_samples, read_nb201_table
    from predictors.transfer import curve

    tables = {c: read_nb201_table(nb201_table_path(), c) for c in COLUMNS}
    encodings = tables[target].encodings
    if any(t.encodings != encodings for t in tables.values()):
        raise SystemExit("the packaged table's columns cover different cells")
    keep = np.arange(len(encodings)) if rows is None else np.arange(rows)
    samples = nb201_samples([encodings[k] for k in keep], tables[target].y[keep], flops=False)
    sources = [samples.with_y(t.y[keep]) for c, t in tables.items() if c != target]
    return curve(samples, sources, sizes, range(seeds), methods, n_test, pretrain, config)


def main() -> None:
    from controller.reporting.tables import text_table
    from predictors.transfer import as_rows

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="ridge,sources")
    parser.add_argument("--samples", default="10,20,50,100,900")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--targets", default=",".join(COLUMNS))
    args = parser.parse_args()
    print(f"machine: {machine_line()}\n", flush=True)
    for target in args.targets.split(","):
        t0 = time.perf_counter()
        points = run(target, args.methods.split(","), [int(n) for n in args.samples.split(",")], args.seeds)
        print(f"{target} ({time.perf_counter() - t0:.0f} s)")
        print(text_table(as_rows(points)) + "\n", flush=True)


if __name__ == "__main__":
    main()
