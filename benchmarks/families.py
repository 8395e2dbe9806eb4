"""Predictors on the families beyond NB-201 (issue #19), on the packaged tables.

- HELP FBNet latency: Spearman at ``--train`` (900) training networks, the rest test, on every device
  column (target: >= 0.99 on every column);
- NAS-Bench-Macro CIFAR-10 accuracy (one row per network: 3,969): Spearman and NDCG@10 at 50 / 200 / 1,000
  training networks;
- OFA-MobileNetV3 ImageNet top-1 (DyNAS-T, 2,162 subnets): the same at 50 / 200 / 1,000.

Seeds are random splits; mean ± std over them. ``--kinds`` picks the predictors (the whole-CG GNNs, e.g.
kgnn, take minutes per fit on a CPU); ``--set`` changes their settings as ``hwnas predictor bench --set`` does.

    python -m benchmarks.families [--seeds 5] [--kinds ridge,svr,stacked,flops] [--fbnet-columns all|COL,...]
        [--only fbnet|macro|ofa] [--sizes 50,200,1000] [--set [KIND.]KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import statistics
import time

from benchmarks.common import machine_line


def _samples(space_name: str, table_name: str, target: str, kinds: list[str]):
    from hwnas.controller.data import TABLES, table_path
    from hwnas.controller.learning.data import read_space_table, table_samples
    from hwnas.controller.spaces import get_space

    space = get_space(space_name)
    table = read_space_table(table_path(table_name), target, space, one_per_network=TABLES[table_name].copies)
    return table_samples(space, table.encodings, table.y, flops="flops" in kinds,
                         graphs=any(k in kinds for k in ("kgnn", "gcn-cg", "gin", "gatv2")))


def _fit_scores(samples, kinds: list[str], n_train: int, seeds: int, higher: bool,
                configs: dict[str, dict]) -> dict[str, dict[str, list]]:
    """{kind: {"spearman": [...], "ndcg_at_10": [...], "fit_s": [...]}} over seeds; 10 % of the training size
    (at least 10) is split off for validation, the rest of the table is the test set."""
    import numpy as np

    from hwnas.predictors import get_predictor, predictor_class
    from hwnas.predictors.metrics import evaluate

    out: dict[str, dict[str, list]] = {k: {"spearman": [], "ndcg_at_10": [], "fit_s": []} for k in kinds}
    n_valid = max(10, n_train // 10)
    for seed in range(seeds):
        order = np.random.default_rng(seed).permutation(len(samples))
        train, valid = samples.take(order[:n_train]), samples.take(order[n_train:n_train + n_valid])
        test = samples.take(order[n_train + n_valid:])
        for kind in kinds:
            config = {**configs.get(kind, {}), **({"seed": seed} if "seed" in predictor_class(kind).defaults() else {})}
            t0 = time.perf_counter()
            predictor = get_predictor(kind, **config).fit(train, valid)
            out[kind]["fit_s"].append(time.perf_counter() - t0)
            metrics = evaluate(predictor.predict_flagged(test)[0], test.y, higher_is_better=higher)
            out[kind]["spearman"].append(metrics["spearman"])
            out[kind]["ndcg_at_10"].append(metrics["ndcg_at_10"])
    return out


def _cell(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.pstdev(values):.3f}"


def fbnet(kinds: list[str], seeds: int, n_train: int, columns: list[str], configs: dict[str, dict]) -> None:
    from hwnas.controller.data import table_rows

    names = columns or [c for c in table_rows("help-fbnet")[0] if c.startswith("lat_ms_")]
    print(f"\nHELP FBNet latency, {n_train} training networks, Spearman (mean ± std over {seeds} seeds)")
    print("| column | " + " | ".join(kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    for column in names:
        scores = _fit_scores(_samples("fbnet", "help-fbnet", column, kinds), kinds, n_train, seeds, False, configs)
        print(f"| {column} | " + " | ".join(_cell(scores[k]["spearman"]) for k in kinds) + " |", flush=True)


def accuracy_family(label: str, space: str, table: str, target: str, kinds: list[str], seeds: int,
                    sizes: list[int], configs: dict[str, dict]) -> None:
    samples = _samples(space, table, target, kinds)
    print(f"\n{label} ({len(samples)} networks), Spearman / NDCG@10 (mean ± std over {seeds} seeds)")
    print("| training networks | " + " | ".join(kinds) + " |")
    print("|---|" + "---|" * len(kinds))
    for n in sizes:
        scores = _fit_scores(samples, kinds, n, seeds, True, configs)
        print(f"| {n} | " + " | ".join(f"{_cell(scores[k]['spearman'])} / {_cell(scores[k]['ndcg_at_10'])}"
                                       for k in kinds) + " |", flush=True)
        fits = [f"{k} {statistics.mean(scores[k]['fit_s']):.1f} s" for k in kinds]
        print(f"  (mean fit at {n}: {', '.join(fits)})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--kinds", default="ridge,svr,stacked,flops")
    parser.add_argument("--train", type=int, default=900, help="FBNet training networks (default %(default)s)")
    parser.add_argument("--fbnet-columns", default="all", help="all, or comma-separated lat_ms_* columns")
    parser.add_argument("--sizes", default="50,200,1000", help="training sizes for the accuracy tables")
    parser.add_argument("--only", choices=["fbnet", "macro", "ofa"], default=None)
    parser.add_argument("--set", action="append", default=[], metavar="[KIND.]KEY=VALUE", dest="settings",
                        help="a predictor setting, as hwnas predictor bench --set (e.g. kgnn.epochs=60)")
    args = parser.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    from hwnas.controller.cli.predictor import predictor_settings

    configs = predictor_settings(args.settings, kinds)
    sizes = [int(n) for n in args.sizes.split(",")]
    print(f"machine: {machine_line()}" + (f"; settings {args.settings}" if args.settings else ""))
    if args.only in (None, "fbnet"):
        columns = [] if args.fbnet_columns == "all" else args.fbnet_columns.split(",")
        fbnet(kinds, args.seeds, args.train, columns, configs)
    if args.only in (None, "macro"):
        accuracy_family("NAS-Bench-Macro CIFAR-10 mean_acc", "nas-bench-macro", "nas-bench-macro", "mean_acc",
                        kinds, args.seeds, sizes, configs)
    if args.only in (None, "ofa"):
        accuracy_family("OFA-MobileNetV3 w1.0 ImageNet top1_acc (DyNAS-T, search-biased)", "ofa-mbv3",
                        "ofa-mbv3-accuracy", "top1_acc", kinds, args.seeds, sizes, configs)


if __name__ == "__main__":
    main()
