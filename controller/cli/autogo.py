"""``hwnas autogo``: build a segment database, train the PSC predictor, evolve a network on a device."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from hwnas.controller.cli import common
from hwnas.controller.cli.measure import add_measurement_options

DEFAULT_SEGMENTS = Path("autogo/segments")
DEFAULT_PSC = Path("autogo/psc")


def _bounds(text: str) -> tuple[float, float] | None:
    """'-20:10' (percent change of FLOPs vs the input network) or 'none'."""
    if text == "none":
        return None
    low, sep, high = text.partition(":")
    try:
        if not sep:
            raise ValueError
        bounds = (float(low) / 100, float(high) / 100)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--flops-bounds must look like -20:10 (percent) or none: {text!r}") from None
    if bounds[0] > 0 or bounds[1] < 0:
        raise argparse.ArgumentTypeError(f"--flops-bounds must include 0 (the input network), got {text!r}")
    return bounds


def cmd_build_db(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from hwnas.controller.autogo.database import build_database, standard_corpus
    from hwnas.controller.graph.onnx_import import from_onnx

    try:
        if args.samples_per_space < 1:
            raise ValueError(f"--samples-per-space must be >= 1, got {args.samples_per_space}")
        corpus = standard_corpus(args.samples_per_space, args.seed,
                                 [s for s in args.spaces.split(",") if s] if args.spaces else None)
        for path in args.onnx or []:
            if not path.is_file():
                raise ValueError(f"--onnx {path}: no such file")
            corpus.append((path.stem, from_onnx(path)))
        database = build_database(corpus, args.vocab_size, progress=lambda it: tqdm(
            it, desc="segments", unit="graph", disable=args.quiet))
    except ValueError as exc:
        return common.fail("autogo build-db", exc)
    path = database.save(args.out)
    summary = database.summary()
    print(f"{summary['segments']} unique segments ({summary['mutable']} mutable; 1-{summary['largest']} nodes, "
          f"mean {summary['mean_nodes']}) from {sum(summary['corpus'].values())} networks, {summary['pieces']} BPE "
          f"pieces over {summary['labels']} node labels; wrote {path}")
    return 0


def cmd_train_psc(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from hwnas.controller.autogo.database import SegmentDatabase
    from hwnas.controller.autogo.psc_training import train_psc

    try:
        database = SegmentDatabase.load(args.segments)
        report = train_psc(database, args.out, args.train, args.valid, args.test, args.per_graph, args.epochs,
                           args.accuracy_column, args.seed, baseline=args.baseline,
                           progress=lambda it, desc: tqdm(it, desc=desc, unit="graph", disable=args.quiet))
    except (ValueError, OSError) as exc:
        return common.fail("autogo train-psc", exc)
    print(f"PSC: fold Spearman {report['psc_fold_srcc']:.3f} on {report['test']} test networks "
          f"({report['folds']} folds), fit {report['psc_fit_s']:.0f} s on {report['train_samples']} decompositions")
    if args.baseline:
        print(f"whole-graph k-GNN: Spearman {report['gnn_srcc']:.3f}, fit {report['gnn_fit_s']:.0f} s")
    print(f"wrote {args.out}/ (card.json, weights.safetensors, evaluation.json)")
    return 0


def _input_network(args: argparse.Namespace):
    """(name, graph) from --input, --zoo or --space/--arch."""
    given = [flag for flag, value in (("--input", args.input), ("--zoo", args.zoo), ("--arch", args.arch)) if value]
    if len(given) != 1:
        raise ValueError("give exactly one network: --input model.onnx, --zoo NAME, or --space SPACE --arch STR")
    if args.input:
        from hwnas.controller.graph.onnx_import import from_onnx

        if not args.input.is_file():
            raise ValueError(f"--input {args.input}: no such file")
        return args.input.stem, from_onnx(args.input)
    if args.zoo:
        from hwnas.controller.graph.zoo import zoo_graph

        return args.zoo, zoo_graph(args.zoo, **({"input_hw": args.resolution} if args.resolution else {}))
    from hwnas.controller.spaces.catalog import parse_arch

    space, x = parse_arch(args.arch, args.space, **common.space_options(args))
    return f"{space.name}:{space.to_string(x)}", space.to_graph(x)


def cmd_run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from hwnas.controller.autogo.database import SegmentDatabase
    from hwnas.controller.autogo.mutation import coverage, op_classes
    from hwnas.controller.autogo.outputs import write_outputs
    from hwnas.controller.autogo.search import AutoGO, scorer_for
    from hwnas.controller.cli.measure import Measurement
    from hwnas.controller.graph.model_formats import FormatUnavailable
    from hwnas.controller.search.evaluator import Evaluator
    from hwnas.controller.search.objectives import OBJECTIVES
    from hwnas.controller.store import Store
    from hwnas.predictors import load

    try:
        metric = OBJECTIVES.get(args.metric)
        if metric is None or metric.source == "evaluator":
            known = ", ".join(name for name, o in OBJECTIVES.items() if o.source != "evaluator")
            raise ValueError(f"--metric must be one of {known}; got {args.metric!r}")
        for flag, value, least in (("--iterations", args.iterations, 1), ("--parents", args.parents, 1),
                                   ("--candidates", args.candidates, 1), ("--measure-per-parent",
                                                                          args.measure_per_parent, 1)):
            if value < least:
                raise ValueError(f"{flag} must be >= {least}, got {value}")
        name, graph = _input_network(args)
        database = SegmentDatabase.load(args.segments)
        if not (args.predictor / "card.json").is_file():
            raise ValueError(f"--predictor {args.predictor}: no trained predictor there; train PSC with "
                             "`hwnas autogo train-psc --segments DIR --out DIR` or GENNAPE with `hwnas predictor "
                             "gennape pretrain`")
        predictor = load(args.predictor)
        scorer = scorer_for(predictor, database)
        allowed = set(args.ops.split(",")) if args.ops else op_classes(graph)
        out = args.out or Path("runs") / f"autogo-{name.replace('/', '_').replace(':', '-')[:40]}-{args.metric}"
        measurement = None
        if metric.source == "measured":
            if not args.device:
                raise ValueError(f"--metric {args.metric} is measured on a device: give --device KEY and its agents")
            measurement = Measurement.from_args(args, args.device, f"autogo:{out.name}")
    except (ValueError, KeyError, OSError, FormatUnavailable) as exc:
        return common.fail("autogo run", exc)

    bar = tqdm(total=args.iterations + 1, desc=f"autogo {name[:30]}", unit="it", disable=args.quiet)
    settings = {"input": name, "metric": args.metric, "device": args.device or "", "iterations": args.iterations,
                "parents": args.parents, "candidates": args.candidates,
                "measure_per_parent": None if metric.source == "graph" else args.measure_per_parent,
                "flops_bounds": args.flops_bounds, "ops": sorted(allowed), "seed": args.seed,
                "segments": str(args.segments), "predictor": str(args.predictor)}

    def on_iteration(iteration: int, batch) -> None:
        bar.update(1)
        front = search.front()
        best = min((i.metric for i in front), default=float("nan")) if metric.minimise else float("nan")
        bar.set_postfix_str(f"it {iteration}: +{len(batch)} measured, front {len(front)}, best {metric.column} "
                            f"{best:.4g}", refresh=False)

    with Store(args.db) as store, contextlib.ExitStack() as stack:
        try:
            measurer = stack.enter_context(measurement.measurer(store, bar.write)) if measurement else None
            evaluator = Evaluator(None, [metric], None, measurer, None)
            search = AutoGO(graph, name, database, scorer, evaluator, np.random.default_rng(args.seed), args.parents,
                            args.candidates, None if metric.source == "graph" else args.measure_per_parent,
                            args.flops_bounds, allowed, on_iteration)
            search.run(args.iterations)
        except KeyboardInterrupt:
            bar.close()
            print("\nstopped; measurements so far are in the store and are reused by the same command",
                  file=sys.stderr)
            return 130
        except (ValueError, ConnectionError, RuntimeError, OSError) as exc:
            bar.close()
            return common.fail("autogo run", exc)
    bar.close()
    covered = coverage(graph, database)
    summary = write_outputs(search, out, {**settings, "coverage": covered})
    root = search.population[0]
    print(f"{summary['evaluated']} networks evaluated, {summary['front']} on the front of predicted accuracy vs "
          f"{metric.column}; input: {root.predicted_accuracy:.2f} predicted, {metric.column} {root.metric:.4g}")
    frozen = ", ".join(f"{op} x{n}" for op, n in covered["frozen"].items()) or "nothing"
    print(f"coverage: {covered['mutable_nodes']} of {covered['nodes']} nodes mutable; "
          f"{covered['replaceable_segments']} of {covered['segments']} segments have a replacement in the database; "
          f"not mutated: {frozen}")
    print(f"wrote {out}/ (all.csv, networks/*.json, pareto.csv, front/*.onnx + CG JSON, mutation.png, run.json)")
    common.report_failures("autogo run", evaluator)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    from hwnas.controller.graph.zoo import ZOO

    a = sub.add_parser("autogo", help="AutoGO: evolve a network's computation graph against a device metric",
                       description="AutoGO (segment mutation of computation graphs). First build a segment "
                                   "database and train the PSC predictor once, then evolve networks.")
    commands = a.add_subparsers(dest="autogo_command", required=True, metavar="SUBCOMMAND")
    b = commands.add_parser("build-db", help="mine segments with BPE from the spaces' samples and the zoo")
    b.add_argument("--out", type=Path, default=DEFAULT_SEGMENTS, help="folder to write (default %(default)s)")
    b.add_argument("--vocab-size", type=int, default=2000, help="BPE vocabulary size (default %(default)s)")
    b.add_argument("--samples-per-space", type=int, default=300,
                   help="random networks of each space in the corpus (default %(default)s)")
    b.add_argument("--spaces", default=None, metavar="SPACE[,SPACE...]",
                   help="the spaces to sample (default: every registered one)")
    b.add_argument("--onnx", type=Path, action="append", metavar="FILE",
                   help="add an ONNX network (CNN or transformer) to the corpus")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--quiet", action="store_true")
    b.set_defaults(func=cmd_build_db)

    t = commands.add_parser("train-psc", help="train the PSC accuracy predictor on NB-201 (the packaged table)")
    t.add_argument("--segments", type=Path, default=DEFAULT_SEGMENTS, help="segment database (default %(default)s)")
    t.add_argument("--out", type=Path, default=DEFAULT_PSC, help="folder to write (default %(default)s)")
    t.add_argument("--train", type=int, default=900, help="training networks (default %(default)s)")
    t.add_argument("--valid", type=int, default=100, help="validation networks (default %(default)s)")
    t.add_argument("--test", type=int, default=500, help="test networks for fold Spearman (default %(default)s)")
    t.add_argument("--per-graph", type=int, default=8, help="decompositions per training network (default "
                                                            "%(default)s)")
    t.add_argument("--epochs", type=int, default=40)
    t.add_argument("--accuracy-column", default="acc_cifar10_test", help="NB-201 table column (default %(default)s)")
    t.add_argument("--baseline", action="store_true", help="also fit the whole-graph k-GNN and report it")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=cmd_train_psc)

    r = commands.add_parser("run", help="evolve a network: a Pareto front of predicted accuracy vs the metric",
                            description="Evolve --input (ONNX), --zoo NAME or --space SPACE --arch STR. Latency, "
                                        "power and energy are measured by the agents of --device.")
    r.add_argument("--input", type=Path, help="an ONNX network (a CNN, or a transformer: its token blocks)")
    r.add_argument("--zoo", choices=sorted(ZOO), help="a network of the built-in zoo")
    r.add_argument("--space", default=None, help="with --arch: the space of the architecture")
    r.add_argument("--arch", help="an architecture of --space (string form, encoding or NB-201 index)")
    r.add_argument("--device", metavar="KEY", type=common.DEVICE_KEY,
                   help="device key whose agents measure (for measured metrics)")
    r.add_argument("--metric", default="latency", help="latency, power, energy (measured) or flops, params")
    r.add_argument("--iterations", type=int, default=5)
    r.add_argument("--parents", type=int, default=10, help="parents per iteration (default %(default)s)")
    r.add_argument("--candidates", type=int, default=100, help="valid children per parent (default %(default)s)")
    r.add_argument("--measure-per-parent", type=int, default=8,
                   help="children per parent measured on the device (default %(default)s)")
    r.add_argument("--flops-bounds", type=_bounds, default=(-0.2, 0.1), metavar="LOW:HIGH|none",
                   help="allowed FLOPs change vs the input, percent (default -20:10)")
    r.add_argument("--ops", default=None, help="op whitelist for replacements, e.g. conv,batchnorm,relu,add "
                                               "(dwconv: depthwise); default: the input network's ops")
    r.add_argument("--segments", type=Path, default=DEFAULT_SEGMENTS, help="segment database (default %(default)s)")
    r.add_argument("--predictor", type=Path, default=DEFAULT_PSC,
                   help="accuracy predictor: PSC (hwnas autogo train-psc) or GENNAPE (hwnas predictor gennape "
                        "pretrain or finetune) (default %(default)s)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--db", type=common.db_target, default=Path("hwnas.db"),
                   help="store (SQLite file or SQLAlchemy URL)")
    r.add_argument("--out", type=Path, default=None, help="output folder (default runs/autogo-INPUT-METRIC)")
    r.add_argument("--quiet", action="store_true")
    common.add_space_options(r)
    add_measurement_options(r)
    r.set_defaults(func=cmd_run)
