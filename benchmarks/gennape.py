"""GENNAPE's transfer protocol on the packaged families (issue #20).

Pretrain on ``--pretrain`` (NB-201 by default: only 292 distinct NB-101 networks are packaged, the paper's 50k are
not), then for each test family: zero-shot on all its networks, and fine-tuned on the same ``--finetune`` (50)
networks per seed for every method, tested on the rest, ``--seeds`` (5) seeds. Prints SRCC, Kendall tau,
NDCG@10 (and MAE fine-tuned) of GENNAPE and of each member (k-GNN and FLOPs are the paper's baselines), the
zero-cost proxies where the table has them, the pretraining wall time and one fine-tune + eval's.

    python -m benchmarks.gennape [--pretrain nb201[,nas-bench-macro]] [--families naslib-nb101,...]
           [--max-networks 2000] [--seeds 5] [--save DIR]
"""

from __future__ import annotations

import argparse
import time

from benchmarks.common import machine_line

TARGETS = {"srcc_ft": 0.85, "ndcg_ft": 0.90, "ofa_srcc_ft": 0.94, "ofa_srcc_zero": 0.80}


def _cell(stat: tuple[float, float]) -> str:
    return f"{stat[0]:.3f} ± {stat[1]:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain", default="nb201", help="comma-separated families to pretrain on")
    parser.add_argument("--families", default="naslib-nb101,nas-bench-macro,ofa-mbv3-accuracy")
    parser.add_argument("--max-networks", type=int, default=2000, help="per pretraining family")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--finetune", type=int, default=50)
    parser.add_argument("--config", default="", metavar="K=V[,K=V]", help="GENNAPE options, e.g. cl_epochs=2")
    parser.add_argument("--save", default="", metavar="DIR", help="also save the pretrained predictor here")
    args = parser.parse_args()

    import numpy as np

    from hwnas.controller.learning.families import load_family, pooled
    from hwnas.predictors import get_predictor
    from hwnas.predictors.gennape.protocol import LABELS, summary, transfer

    print(f"machine: {machine_line()}")
    config = {k: float(v) if "." in v else int(v) for k, v in (p.split("=") for p in args.config.split(",") if p)}
    pretrain = pooled([load_family(name, args.max_networks) for name in args.pretrain.split(",")])
    started = time.perf_counter()
    predictor = get_predictor("gennape", **config).fit(pretrain)
    pretrain_s = time.perf_counter() - started
    if args.save:
        predictor.save(__import__("pathlib").Path(args.save))
    print(f"pretrained on {args.pretrain} ({len(pretrain)} networks, up to {args.max_networks} each) in "
          f"{pretrain_s:.0f} s; options {config or 'defaults'}")
    for name in args.families.split(","):
        family = load_family(name)
        results = transfer(predictor, family.samples, args.finetune, range(args.seeds), family.proxies)
        table = summary(results)
        seconds = [r.seconds for r in results if r.method == "gennape" and r.setting == "fine-tuned"]
        print(f"\n{name}: {len(family.samples)} networks, accuracy {family.samples.y.min():.2f}-"
              f"{family.samples.y.max():.2f} %; fine-tuned on {args.finetune} per seed, {args.seeds} seeds; one "
              f"fine-tune + eval {np.mean(seconds):.1f} s")
        print("| method | zero-shot SRCC | zero-shot NDCG@10 | FT SRCC | FT Kendall τ | FT NDCG@10 | FT MAE % |")
        print("|---|---|---|---|---|---|---|")
        for method in dict.fromkeys(m for m, _ in table):
            zero, tuned = table[(method, "zero-shot")], table[(method, "fine-tuned")]
            print(f"| {LABELS.get(method, method)} | {zero['spearman'][0]:.3f} | {zero['ndcg_at_10'][0]:.3f} | "
                  f"{_cell(tuned['spearman'])} | {_cell(tuned['kendall_tau'])} | {_cell(tuned['ndcg_at_10'])} | "
                  + (_cell(tuned["mae"]) if "mae" in tuned else "") + " |", flush=True)
        ensemble, kgnn = table[("gennape", "fine-tuned")], table[("kgnn", "fine-tuned")]
        verdicts = [f"FT SRCC {ensemble['spearman'][0]:.3f} vs target {TARGETS['srcc_ft']}",
                    f"FT NDCG@10 {ensemble['ndcg_at_10'][0]:.3f} vs {TARGETS['ndcg_ft']}",
                    f"above k-GNN (FT SRCC {kgnn['spearman'][0]:.3f}): "
                    f"{'yes' if ensemble['spearman'][0] > kgnn['spearman'][0] else 'no'}"]
        if name == "ofa-mbv3-accuracy":
            verdicts += [f"OFA FT SRCC vs {TARGETS['ofa_srcc_ft']}, zero-shot "
                         f"{table[('gennape', 'zero-shot')]['spearman'][0]:.3f} vs {TARGETS['ofa_srcc_zero']}"]
        print("targets: " + "; ".join(verdicts))


if __name__ == "__main__":
    main()
