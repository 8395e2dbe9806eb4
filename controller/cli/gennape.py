"""``hwnas predictor gennape``: pretrain GENNAPE on labelled families, evaluate its transfer, fine-tune it."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hwnas.controller.cli.common import fail

FAMILY_HELP = ("a space with a packaged accuracy table (nb201, nas-bench-macro, ofa-mbv3, nb101), a packaged table "
               "by name (naslib-nb101, ...) or a folder of ONNX files with labels.csv (columns file,accuracy)")


def add_gennape_parser(predictor: argparse._SubParsersAction) -> None:
    group = predictor.add_parser(
        "gennape", help="GENNAPE: one accuracy predictor for networks of any family",
        description="GENNAPE (Mills et al. 2023): a contrastive encoder of whole computation graphs, fuzzy "
                    "clusters, MLP ensembles, pairwise heads, a k-GNN and FLOPs, pretrained on labelled families "
                    "and transferred to unseen ones zero-shot or after fine-tuning on a few networks."
    ).add_subparsers(dest="gennape_command", required=True, metavar="SUBCOMMAND")
    pre = group.add_parser("pretrain", help="pretrain on one or more labelled families and save the predictor")
    pre.add_argument("--family", action="append", required=True, metavar="FAMILY",
                     help=FAMILY_HELP + "; repeat for several")
    pre.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for card.json + safetensors")
    pre.add_argument("--max-networks", type=int, default=2000, metavar="N",
                     help="a random N distinct networks of each family (default %(default)s; 0: all)")
    pre.add_argument("--cl-epochs", type=int, default=None, help="contrastive epochs (default: the predictor's, 8)")
    pre.add_argument("--epochs", type=int, default=None, help="head epochs (default: the predictor's, 40)")
    pre.add_argument("--seed", type=int, default=0, help="picks the networks and initialises the nets")
    pre.add_argument("--quiet", action="store_true", help="no progress lines")
    pre.set_defaults(func=cmd_gennape_pretrain)
    ev = group.add_parser("eval", help="zero-shot and fine-tuned transfer to a family: SRCC, Kendall tau, NDCG@10, "
                                       "MAE beside the k-GNN, FLOPs and zero-cost baselines")
    ev.add_argument("--model", type=Path, required=True, metavar="DIR", help="a pretrained GENNAPE folder")
    ev.add_argument("--family", required=True, metavar="FAMILY", help=FAMILY_HELP)
    ev.add_argument("--finetune", type=int, default=50, metavar="N",
                    help="networks to fine-tune on per seed, the same for every method (default %(default)s; 0: "
                         "zero-shot only)")
    ev.add_argument("--seeds", type=int, default=5, help="fine-tuning repeats, each on other networks (default "
                                                         "%(default)s)")
    ev.add_argument("--max-networks", type=int, default=0, metavar="N", help="a random N networks (default: all)")
    ev.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write per-seed metrics here")
    ev.add_argument("--quiet", action="store_true", help="no progress lines")
    ev.set_defaults(func=cmd_gennape_eval)
    ft = group.add_parser("finetune", help="fine-tune a pretrained GENNAPE on a family's labelled networks and save "
                                           "it (for hwnas search --accuracy gennape:DIR)")
    ft.add_argument("--model", type=Path, required=True, metavar="DIR")
    ft.add_argument("--family", required=True, metavar="FAMILY", help=FAMILY_HELP)
    ft.add_argument("--samples", type=int, default=50, metavar="N",
                    help="a random N of the family's networks (default %(default)s; 0: all)")
    ft.add_argument("--seed", type=int, default=0, help="picks the --samples networks")
    ft.add_argument("--out", type=Path, required=True, metavar="DIR")
    ft.set_defaults(func=cmd_gennape_finetune)


def _say(quiet: bool):
    started = time.perf_counter()
    return (lambda what: None) if quiet else (
        lambda what: print(f"[{time.perf_counter() - started:6.1f} s] {what}", flush=True))


def load_gennape(folder: Path):
    """A saved predictor that is GENNAPE, or a ValueError saying what it is instead."""
    from hwnas.predictors import load

    predictor = load(folder)
    if predictor.kind != "gennape":
        raise ValueError(f"{folder} holds a {predictor.kind!r} predictor, not GENNAPE (hwnas predictor gennape "
                         "pretrain makes one)")
    return predictor


def cmd_gennape_pretrain(args: argparse.Namespace) -> int:
    from hwnas.controller.learning.families import load_family, pooled
    from hwnas.predictors import get_predictor

    say = _say(args.quiet)
    try:
        if args.max_networks < 0:
            raise ValueError(f"--max-networks must be >= 0, got {args.max_networks}")
        families = [load_family(spec, args.max_networks, args.seed) for spec in args.family]
        for family in families:
            say(f"{family.name}: {len(family.samples)} networks, accuracy {family.samples.y.min():.2f}-"
                f"{family.samples.y.max():.2f} %")
        merged = pooled(families)
        options = {"seed": args.seed, **({"cl_epochs": args.cl_epochs} if args.cl_epochs is not None else {}),
                   **({"epochs": args.epochs} if args.epochs is not None else {})}
        predictor = get_predictor("gennape", **options)
        predictor.progress = say
        started = time.perf_counter()
        predictor.fit(merged)
        predictor.card.target = "accuracy %"
        predictor.save(args.out)
    except (ValueError, OSError) as exc:
        return fail("predictor gennape pretrain", exc)
    print(f"pretrained on {', '.join(f.name for f in families)} ({len(merged)} networks) in "
          f"{time.perf_counter() - started:.0f} s: {args.out}")
    return 0


def cmd_gennape_eval(args: argparse.Namespace) -> int:
    from hwnas.controller.learning.families import load_family
    from hwnas.controller.reporting.tables import text_table
    from hwnas.predictors.gennape.protocol import LABELS, summary, transfer

    say = _say(args.quiet)
    try:
        if args.seeds < 1 or args.finetune < 0:
            raise ValueError("--seeds must be >= 1 and --finetune >= 0")
        predictor = load_gennape(args.model)
        family = load_family(args.family, args.max_networks)
        say(f"{family.name}: {len(family.samples)} networks, accuracy {family.samples.y.min():.2f}-"
            f"{family.samples.y.max():.2f} %; pretrained on {', '.join(predictor.card.domain.get('families', []))}")
        results = transfer(predictor, family.samples, args.finetune, range(args.seeds), family.proxies, say)
    except (ValueError, OSError) as exc:
        return fail("predictor gennape eval", exc)
    table = summary(results)
    header = ["method", "zero-shot SRCC", "KT", "NDCG@10"]
    if args.finetune:
        header += [f"FT{args.finetune} SRCC", "KT", "NDCG@10", "MAE %"]
    rows = [header]
    for method in dict.fromkeys(m for m, _ in table):
        zero = table[(method, "zero-shot")]
        row = [LABELS.get(method, method)] + [f"{zero[m][0]:.3f}" for m in ("spearman", "kendall_tau", "ndcg_at_10")]
        tuned = table.get((method, "fine-tuned"))
        if tuned:
            row += [f"{tuned[m][0]:.3f}±{tuned[m][1]:.3f}" for m in ("spearman", "kendall_tau", "ndcg_at_10")]
            row.append(f"{tuned['mae'][0]:.2f}±{tuned['mae'][1]:.2f}" if "mae" in tuned else "")
        rows.append(row)
    print(text_table(rows))
    seconds = [r.seconds for r in results if r.method == "gennape" and r.setting == "fine-tuned"]
    print(f"zero-shot: all {len(family.samples)} networks, each member standardised on them (no labels used); "
          + (f"fine-tuned: {args.finetune} networks per seed (the same for every method), tested on the other "
             f"{len(family.samples) - args.finetune}, mean±std over {args.seeds} seeds; one fine-tune + eval "
             f"{sum(seconds) / len(seconds):.1f} s" if seconds else "no fine-tuning"))
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ for r in results], indent=1) + "\n")
        print(f"per-seed metrics: {args.json}")
    return 0


def cmd_gennape_finetune(args: argparse.Namespace) -> int:
    from hwnas.controller.learning.families import load_family

    try:
        predictor = load_gennape(args.model)
        family = load_family(args.family, args.samples, args.seed)
        predictor.finetune(family.samples)
        predictor.save(args.out)
    except (ValueError, OSError) as exc:
        return fail("predictor gennape finetune", exc)
    print(f"fine-tuned on {len(family.samples)} {family.name} networks: {args.out}\n{predictor.card.notes}")
    return 0
