"""AutoBuild's predictor on held-out networks: Spearman correlation per hop level and target, and fit time.

For every ``--objective`` (same syntax as ``hwnas autobuild train``: a table column, or what the store's agents
measured with ``--db``) and seed: a random ``--train`` networks (at most 80 % of those labelled) train one
predictor (a tenth of them held out to pick the epoch), the rest are the test. Prints the 0-hop and the best
hop level's Spearman correlation (mean ± std over seeds) and the seconds one fit took (target: 500 networks
in ≤ 5 min on this machine).

    python -m benchmarks.autobuild --space nas-bench-macro --objective acc=table \\
        [--objective lat=db:cpu-ort --db lab.db] [--train 500] [--seeds 5] [--set epochs=300]
"""

from __future__ import annotations

import argparse
import json
import time

from benchmarks.common import machine_line

FIT_SECONDS = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="nas-bench-macro")
    parser.add_argument("--objective", action="append", required=True, metavar="NAME=SOURCE")
    parser.add_argument("--db", default=None)
    parser.add_argument("--resolution", type=int, default=None)
    parser.add_argument("--train", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings")
    args = parser.parse_args()

    import numpy as np
    from scipy import stats

    from hwnas.controller.autobuild.labels import labelled, parse_objective
    from hwnas.controller.autobuild.sequences import sequence_family, sequence_samples
    from hwnas.controller.spaces import get_space
    from hwnas.predictors import get_predictor

    print(f"machine: {machine_line()}")
    space = get_space(args.space, **({"resolution": args.resolution} if args.resolution else {}))
    family = sequence_family(space.name)
    config = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.settings)}
    store = None
    if args.db:
        from hwnas.controller.store import Store

        store = Store(args.db, read_only=True)
    print("| target | networks | train | 0-hop SRCC | best hop SRCC (hop) | fit s |")
    print("|---|---|---|---|---|---|")
    for text in args.objective:
        objective = parse_objective(text)
        data = labelled(space, [objective], store)
        y = data.values[:, 0] * (-1.0 if objective.lower_is_better else 1.0)
        samples = sequence_samples(family, data.encodings, data.resolutions, y)
        n_train = min(args.train, int(0.8 * len(y)))
        rhos, seconds = [], []
        for seed in range(args.seeds):
            order = np.random.default_rng(seed).permutation(len(y))
            held = max(5, n_train // 10)
            valid, train, test = order[:held], order[held:n_train], order[n_train:]
            predictor = get_predictor("autobuild", categories=family.categories, values=family.values, seed=seed,
                                      device="cpu", **config)
            started = time.perf_counter()
            predictor.fit(samples.take(train), samples.take(valid))
            seconds.append(time.perf_counter() - started)
            levels = predictor.level_scores(samples.take(test))
            rhos.append([stats.spearmanr(levels[:, m], y[test]).statistic for m in range(levels.shape[1])])
        rho = np.array(rhos)
        best = int(np.argmax(rho.mean(axis=0)))
        print(f"| {text} | {len(y)} | {n_train} | {rho[:, 0].mean():.3f} ± {rho[:, 0].std():.3f} | "
              f"{rho[:, best].mean():.3f} ± {rho[:, best].std():.3f} ({best}) | {np.mean(seconds):.0f} |", flush=True)
        if n_train >= 500:
            print(f"fit time target (≤ {FIT_SECONDS:.0f} s for 500 networks): "
                  f"{'met' if max(seconds) <= FIT_SECONDS else 'NOT met'} ({max(seconds):.0f} s at most)")
    if store is not None:
        store.close()


if __name__ == "__main__":
    main()
