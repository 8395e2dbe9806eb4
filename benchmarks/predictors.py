"""Latency predictors vs BRP-NAS on its own data (issue #5): the BRP-NAS protocol on the NB-201 table.

900 random connected cells train, 100 validate, the other 14,284 test; 5 seeds; the share of test cells
within +-1/5/10 % (BRP-NAS definition and nn-Meter's), MAPE, RMSE, Spearman, Kendall tau. Target on
``lat_ms_latbench_desktop_cpu_i7_7820x``: >= 40 / 90 / 98 % (BRP-NAS Table 1: 36.0 / 85.2 / 96.4).

    python -m benchmarks.predictors [--target COLUMN] [--seeds 5] [--kinds ridge,svr,stacked,flops,gcn]
    python -m benchmarks.predictors --repeatability COLUMN[,...] --kinds ridge,stacked
"""

from __future__ import annotations

import argparse
import time

from benchmarks.common import machine_line


def run(target: str, kinds: list[str], seeds: int, n_train: int = 900, n_valid: int = 100, rows: int | None = None,
        configs: dict | None = None, cell_graph: str = "pruned") -> tuple[list, float]:
    import numpy as np

    from hwnas.controller.data import nb201_table_path
    from hwnas.controller.learning.data import nb201_samples, read_nb201_table
    from hwnas.predictors import predictor_class
    from hwnas.predictors.evaluate import bench

    table = read_nb201_table(nb201_table_path(), target)
    keep = np.arange(len(table.encodings)) if rows is None else np.arange(rows)
    whole_cg = any("graphs" in predictor_class(kind).needs for kind in kinds)
    samples = nb201_samples([table.encodings[k] for k in keep], table.y[keep], flops="flops" in kinds,
                            graphs=whole_cg, cell_graph=cell_graph)
    t0 = time.perf_counter()
    results = bench(samples, kinds, range(seeds), n_train, n_valid, configs)
    return results, time.perf_counter() - t0


def noise_ceiling(target: str) -> dict[str, float]:
    """What the table's own repeat measurements allow: NB-201 cells that prune to the same network (same live
    edges) were timed separately; predicting each one by the mean of its twins' measurements is the best a
    predictor of the network can do. Returns that predictor's share within +-1/5/10 % (BRP-NAS definition)."""
    import collections

    import numpy as np

    from hwnas.controller.data import nb201_table_path
    from hwnas.controller.learning.data import read_nb201_table
    from hwnas.controller.spaces.nb201 import live_edges
    from hwnas.predictors.metrics import evaluate

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


def swapped_twin(x: list[int]) -> tuple[int, ...] | None:
    """The other NB-201 cell that runs the very same network, dead edges included, or None.

    With edge 1->2 ``none``, nodes 1 and 2 are interchangeable: swapping them (edges 0->1 with 0->2,
    1->3 with 2->3) renumbers the nodes of one network. HW-NAS-Bench and LatBench timed both cells
    separately, so their difference is the table's own measurement repeatability.
    """
    if x[2] != 0:
        return None
    twin = (x[1], x[0], 0, x[3], x[5], x[4])
    return twin if twin != tuple(x) else None


def repeatability(target: str, kinds: list[str], seeds: int, n_train: int = 900, n_valid: int = 100) -> dict:
    """How well the table ranks against itself, against how well the predictors rank, on the same cells.

    For the test cells of each seed whose swapped twin is also a test cell: Spearman between the twins'
    measurements (r), the ceiling that implies for a perfect predictor of the network (sqrt r, the
    correlation of a true score with one noisy measurement of it), and each predictor's Spearman there.
    """
    import numpy as np
    from scipy import stats

    from hwnas.controller.data import nb201_table_path
    from hwnas.controller.learning.data import nb201_samples, read_nb201_table
    from hwnas.predictors import get_predictor, predictor_class
    from hwnas.predictors.evaluate import split

    table = read_nb201_table(nb201_table_path(), target)
    row = {tuple(x): i for i, x in enumerate(table.encodings)}
    samples = nb201_samples(table.encodings, table.y, flops="flops" in kinds, graphs="kgnn" in kinds)
    twins_r, ceiling, scores = [], [], {kind: [] for kind in kinds}
    for seed in range(seeds):
        parts = split(len(samples), n_train, n_valid, seed)
        test = set(parts.test.tolist())
        pairs = sorted({tuple(sorted((i, row[t]))) for i in test
                        if (t := swapped_twin(table.encodings[i])) in row and row[t] in test})
        first, second = (np.array([p[k] for p in pairs]) for k in (0, 1))
        r = float(stats.spearmanr(table.y[first], table.y[second]).statistic)
        twins_r.append(r)
        ceiling.append(np.sqrt(r))
        cells = np.concatenate([first, second])
        train, valid = samples.take(parts.train), samples.take(parts.valid)
        for kind in kinds:
            config = {"seed": seed} if "seed" in predictor_class(kind).defaults() else {}
            predicted = get_predictor(kind, **config).fit(train, valid).predict(samples.take(cells))
            scores[kind].append(float(stats.spearmanr(predicted, table.y[cells]).statistic))
    return {"pairs": len(pairs), "twins": float(np.mean(twins_r)), "ceiling": float(np.mean(ceiling)),
            **{kind: float(np.mean(v)) for kind, v in scores.items()}}


def main() -> None:
    from hwnas.controller.cli.predictor import predictor_settings
    from hwnas.controller.learning.jobs import bench_table
    from hwnas.controller.reporting.tables import text_table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", default="lat_ms_latbench_desktop_cpu_i7_7820x")
    parser.add_argument("--kinds", default="ridge,svr,stacked,flops,gcn")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--cell-graph", default="pruned", choices=["pruned", "full"])
    parser.add_argument("--set", action="append", default=[], metavar="[KIND.]KEY=VALUE", dest="settings",
                        help="a predictor setting, as hwnas predictor bench --set (e.g. kgnn.readout=additive)")
    parser.add_argument("--rows", type=int, help="use the table's first ROWS cells (train, validation and test)")
    parser.add_argument("--repeatability", metavar="COLUMNS",
                        help="instead of the bench: the twin-cell repeatability of these comma-separated columns "
                             "against --kinds (light kinds only make sense here)")
    args = parser.parse_args()
    if args.repeatability:
        print(f"machine: {machine_line()}\n{args.seeds} seeds; Spearman on test cells whose swapped twin is a "
              "test cell too\n")
        kinds = args.kinds.split(",")
        print("| column | twin pairs | twins r | ceiling sqrt(r) | " + " | ".join(kinds) + " |")
        print("|---|---|---|---|" + "---|" * len(kinds))
        for column in args.repeatability.split(","):
            rep = repeatability(column, kinds, args.seeds)
            print(f"| `{column}` | {rep['pairs']} | {rep['twins']:.3f} | {rep['ceiling']:.3f} | "
                  + " | ".join(f"{rep[k]:.3f}" for k in kinds) + " |", flush=True)
        return
    print(f"machine: {machine_line()}\ntarget: {args.target}, 900 train / 100 validation / rest test"
          f"{f' of the first {args.rows} cells' if args.rows else ''}, {args.seeds} seeds"
          f"{f', settings {args.settings}' if args.settings else ''}\n", flush=True)
    kinds = args.kinds.split(",")
    results, wall = run(args.target, kinds, args.seeds, rows=args.rows,
                        configs=predictor_settings(args.settings, kinds), cell_graph=args.cell_graph)
    print(text_table(bench_table(results)))
    print(f"\n{wall:.0f} s for {len(results)} fits")
    ceiling = noise_ceiling(args.target)
    print(f"noise ceiling ({ceiling['cells']} cells with a separately timed twin network, predicted by their "
          f"twins' mean): {ceiling[1] * 100:.1f} / {ceiling[5] * 100:.1f} / {ceiling[10] * 100:.1f} % within "
          "+-1/5/10 %")


if __name__ == "__main__":
    main()
