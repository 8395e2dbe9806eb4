"""Latency predictors vs BRP-NAS on its own data (issue #5): the BRP-NAS protocol on the NB-201 table.

900 random connected cells train, 100 validate, the other 14,284 test; 5 seeds; the share of test cells
within +-1/5/10 % (BRP-NAS definition and nn-Meter's), MAPE, RMSE, Spearman, Kendall tau. Target on
``lat_ms_latbench_desktop_cpu_i7_7820x``: >= 40 / 90 / 98 % (BRP-NAS Table 1: 36.0 / 85.2 / 96.4).

    python -m benchmarks.predictors [--target COLUMN] [--seeds 5] [--kinds ridge,svr,stacked,flops,gcn]
"""

from __future__ import annotations

import argparse
import time

from benchmarks.common import machine_line


def run(target: str, kinds: list[str], seeds: int, n_train: int = 900, n_valid: int = 100, rows: int | None = None,
        configs: dict | None = None, cell_graph: str = "pruned") -> tuple[list, float]:
    import numpy as np

    from controller.data import nb201_table_path
    from controller.predictor_data import nb201_samples, read_nb201_table
    from predictors.evaluate import bench

    table = read_nb201_table(nb201_table_path(), target)
    keep = np.arange(len(table.encodings)) if rows is None else np.arange(rows)
    samples = nb201_samples([table.encodings[k] for k in keep], table.y[keep], flops="flops" in kinds,
                            graphs="kgnn" in kinds, cell_graph=cell_graph)
    t0 = time.perf_counter()
    results = bench(samples, kinds, range(seeds), n_train, n_valid, configs)
    return results, time.perf_counter() - t0


def noise_ceiling(target: str) -> dict[str, float]:
    """What the table's own repeat measurements allow: NB-201 cells that prune to the same network (same live
    edges) were timed separately; predicting each one by the mean of its twins' measurements is the best a
    predictor of the network can do. Returns that predictor's share within +-1/5/10 % (BRP-NAS definition)."""
    import collections

    import numpy as np

    from controller.data import nb201_table_path
    from controller.predictor_data import read_nb201_table
    from controller.spaces.nb201 import live_edges
    from predictors.metrics import evaluate

    table = read_nb201_table(nb201_table_path(), target)
    twins: dict[tuple, list[float]] = collections.defaultdict(list)
    for x, y in zip(table.encodings, table.y, strict=True):
        twins[tuple(sorted(live_edges(x)))].append(float(y))
    measured, predicted = [], []
    for ys in (np.array(v) for v in twins.values() if len(v) > 1):
        for i in range(len(ys)):
            measured.append(ys[i])
            predicted.append(np.delete(ys, i).mean())
    metrics = evaluate(np.array(predicted), np.array(measured))
    return {"cells": len(measured), **{k: metrics[f"brpnas_within_{k}pct"] for k in (1, 5, 10)}}


def main() -> None:
    from controller.predictor_jobs import bench_table
    from controller.report import text_table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="lat_ms_latbench_desktop_cpu_i7_7820x")
    parser.add_argument("--kinds", default="ridge,svr,stacked,flops,gcn")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--cell-graph", default="pruned", choices=["pruned", "full"])
    args = parser.parse_args()
    print(f"machine: {machine_line()}\ntarget: {args.target}, 900 train / 100 validation / rest test, "
          f"{args.seeds} seeds\n", flush=True)
    results, wall = run(args.target, args.kinds.split(","), args.seeds, cell_graph=args.cell_graph)
    print(text_table(bench_table(results)))
    print(f"\n{wall:.0f} s for {len(results)} fits")
    ceiling = noise_ceiling(args.target)
    print(f"noise ceiling ({ceiling['cells']} cells with a separately timed twin network, predicted by their "
          f"twins' mean): {ceiling[1] * 100:.1f} / {ceiling[5] * 100:.1f} / {ceiling[10] * 100:.1f} % within "
          "+-1/5/10 %")


if __name__ == "__main__":
    main()
