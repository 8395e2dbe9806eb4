"""``hwnas predictor``: bench, transfer and train latency predictors (``layers`` lives in ``cli.layers``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hwnas.controller.cli import common
from hwnas.controller.cli.common import (
    dataset_exists,
    db_target,
    fail,
    warnings_summarised,
)
from hwnas.controller.cli.gennape import add_gennape_parser
from hwnas.controller.cli.layers import add_layers_parser


def add_parser(sub: argparse._SubParsersAction) -> None:
    predictor = sub.add_parser("predictor", help="latency and accuracy predictors").add_subparsers(
        dest="predictor_command", required=True, metavar="SUBCOMMAND")
    pb = predictor.add_parser("bench", help="BRP-NAS evaluation protocol on a space's latency or accuracy table",
                              description="Fit each predictor on random 900 architectures (100 more for "
                                          "validation), test on the rest, for several seeds; print the metrics "
                                          "table. Architectures without a network (NB-201's unconnected cells) are "
                                          "left out; a table that copies one network's numbers to several keys "
                                          "(nas-bench-macro) is read one row per network.")
    pb.add_argument("--space", default="nb201", help="the table's space (default %(default)s): nb201, "
                                                    "nas-bench-macro, fbnet, ...")
    pb.add_argument("--data", type=Path, default=None,
                    help="CSV (or .csv.gz) of the space's architectures and the target column (NB-201: arch_str or "
                         "nb201_index), or this project's export (hwnas latbench export: CSV or Parquet, column "
                         "arch; --target latency_ms) (default: the space's packaged table)")
    pb.add_argument("--device", default=None, metavar="KEY", type=common.DEVICE_KEY,
                    help="with an export holding several device keys: the one to read")
    pb.add_argument("--target", required=True, metavar="COLUMN",
                    help="e.g. lat_ms_latbench_desktop_cpu_i7_7820x (nb201), mean_acc (nas-bench-macro), "
                         "lat_ms_raspi4 (fbnet)")
    pb.add_argument("--better", choices=["lower", "higher"], default=None,
                    help="whether a lower or higher target is better, for NDCG@10 (default: higher for columns "
                         "naming an accuracy, lower otherwise)")
    pb.add_argument("--one-per-network", action="store_true",
                    help="keep one row per network (the packaged tables that need it do so by themselves)")
    pb.add_argument("--kinds", default=None,
                    help="comma-separated predictors (default: ridge,svr,stacked,flops plus gcn where the space "
                         "has a cell graph (nb201); kgnn reads the whole CG of any space; ridge is the additive "
                         "baseline)")
    pb.add_argument("--seeds", type=int, default=5)
    pb.add_argument("--train", type=int, default=900)
    pb.add_argument("--valid", type=int, default=100)
    pb.add_argument("--gcn-epochs", type=int, default=None, help="cap the GCN's epochs (default: 250, as BRP-NAS)")
    add_torch_device(pb)
    add_settings(pb)
    pb.add_argument("--cell-graph", default="pruned", choices=["pruned", "full"],
                    help="the NB-201 network the graph predictors read: pruned (BRP-NAS, default) or full (every "
                         "edge op, as NB-201's reference code runs it and HW-NAS-Bench timed it), for the GCN's "
                         "cell graph and the whole-CG GNNs alike")
    pb.add_argument("--json", type=Path, default=None, metavar="FILE", help="also write per-seed metrics here")
    pb.add_argument("--plot", type=Path, default=None, metavar="PNG",
                    help="predicted vs measured scatter with the ±10%% band, first seed (as BRP-NAS Figure 1)")
    pb.add_argument("--quiet", action="store_true", help="no progress bar")
    pb.set_defaults(func=cmd_predictor_bench)
    px = predictor.add_parser("transfer", help="few-shot: predictors transferred from other devices vs from scratch",
                              description="Learning curves on a new device: Spearman and ±10% vs the number of its "
                                          "measurements n, for predictors that transfer from the source devices "
                                          "(sources: their ridges recombined; gcn-transfer: a GCN pretrained on "
                                          "them) and the same models from scratch (ridge, gcn).")
    px.add_argument("--data", type=Path, default=None, help="target table (default: the packaged NB-201 table)")
    px.add_argument("--target", required=True, metavar="COLUMN")
    px.add_argument("--transfer-from", required=True, metavar="FILE:COLUMN[,FILE:COLUMN...]",
                    type=lambda text: [_source(part) for part in text.split(",") if part],
                    help="source devices' tables; an empty FILE (:lat_ms_1080ti_1) is the packaged NB-201 table")
    px.add_argument("--samples", default="10,20,50,100,900", help="target sample sizes n (default %(default)s)")
    px.add_argument("--seeds", type=int, default=5)
    px.add_argument("--test", type=int, default=2000, help="held-out test architectures per seed")
    px.add_argument("--methods", default="ridge,sources",
                    help="comma-separated: ridge, sources, sources-log (its log designs only, as before "
                         "2026-12-07), gcn, gcn-transfer (default %(default)s; the GCNs take minutes per fit)")
    px.add_argument("--selections", default="random", metavar="HOW[,HOW]",
                    help="how the n target samples are picked: random, active (the reference set, then the most "
                         "informative; docs/predictors.md) or both side by side (default %(default)s)")
    px.add_argument("--quiet", action="store_true", help="no progress bar")
    px.add_argument("--pretrain", type=int, default=2000, metavar="N",
                    help="architectures of each source device the transfer learns from (default %(default)s)")
    px.add_argument("--gcn-epochs", type=int, default=None)
    px.set_defaults(func=cmd_predictor_transfer)
    pt = predictor.add_parser("train", help="train a device's predictor on what its agents measured")
    pt.add_argument("--db", type=db_target, required=True)
    pt.add_argument("--device", required=True, metavar="KEY", type=common.DEVICE_KEY)
    pt.add_argument("--kind", default="gcn", help="predictor kind (default %(default)s)")
    pt.add_argument("--seed", type=int, default=0)
    add_torch_device(pt)
    add_settings(pt)
    pt.add_argument("--sources", default=[], metavar="KEY[,KEY...]", type=common.DEVICE_KEYS,
                    help="with --kind sources: the other device keys of the dataset to transfer from (few-shot; "
                         "default: the space's packaged device tables and every other key with >= 10 of its "
                         "measurements)")
    pt.add_argument("--space", default=None, metavar="NAME",
                    help="the space whose measurements to learn, when the key measured several (default: the only "
                         "one, or the only search space with enough measurements)")
    pt.add_argument("--layers-from", default="isolated", metavar="SOURCE",
                    help="with --kind layerwise, where each layer's latency comes from: isolated (each layer timed "
                         "as its own model by `hwnas predictor layers`), op-profiles (its median time inside the "
                         "networks' per-op profiles, measured with --op-profile) or kernels (nn-Meter-style kernel "
                         "regressors fitted to those profiles: also predicts layers no profile saw); default "
                         "%(default)s")
    pt.add_argument("--quiet", action="store_true", help="no progress bar for the epochs of a GCN/GNN fit")
    pt.set_defaults(func=cmd_predictor_train)
    add_layers_parser(predictor)
    add_gennape_parser(predictor)


def add_torch_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--torch-device", choices=["auto", "cpu", "cuda"], default="auto",
                        help="where the graph predictors train (gcn-cg, gin, gatv2, kgnn, psc): auto is CUDA when "
                             "torch sees one, else the CPU (default %(default)s)")


def add_settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", action="append", default=[], metavar="[KIND.]KEY=VALUE", dest="settings",
                        help="a predictor setting, e.g. --set gcn-cg.readout=additive, or --set epochs=60 for every "
                             "kind that has it; repeatable (settings: docs/predictors.md)")


def predictor_settings(texts: list[str], kinds: list[str]) -> dict[str, dict]:
    """{kind: {key: value}} from ``[KIND.]KEY=VALUE`` texts (a value is read as JSON where it is JSON); a bare
    KEY applies to every kind that has it. ValueError naming the text when it fits none of ``kinds``."""
    import json

    from hwnas.predictors import predictor_class

    out: dict[str, dict] = {}
    for text in texts:
        name, sep, value = text.partition("=")
        if not sep or not name:
            raise ValueError(f"--set {text!r}: write KEY=VALUE or KIND.KEY=VALUE, e.g. --set gcn-cg.readout=additive")
        kind, dot, key = name.rpartition(".")
        targets = [kind] if dot else [k for k in kinds if key in predictor_class(k).defaults()]
        if dot and kind not in kinds:
            raise ValueError(f"--set {text!r}: {kind} is not among the kinds asked for ({', '.join(kinds)})")
        if not targets or key not in predictor_class(targets[0]).defaults():
            raise ValueError(f"--set {text!r}: no kind asked for has a setting {key!r}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        for target in targets:
            default = predictor_class(target).defaults()[key]
            if not _same_kind(parsed, default):
                raise ValueError(f"--set {text!r}: {target}'s {key} must be {type(default).__name__} like its "
                                 f"default {json.dumps(default)}, not {value!r}")
            out.setdefault(target, {})[key] = parsed
    return out


def _same_kind(value: object, default: object) -> bool:
    """Whether a setting's value has its default's type (an int where a float is wanted is fine; a default of
    None takes anything)."""
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return type(value) is type(default)
    if isinstance(default, float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


def merged(*configs: dict[str, dict]) -> dict[str, dict]:
    """Per-kind settings, later ones winning."""
    out: dict[str, dict] = {}
    for config in configs:
        for kind, options in config.items():
            out[kind] = {**out.get(kind, {}), **options}
    return out


def torch_device_config(kinds: list[str], device: str) -> dict[str, dict[str, str]]:
    """{kind: {"device": ...}} for the kinds that train on a torch device; ValueError if CUDA is asked for and
    absent (before anything trains)."""
    from hwnas.predictors import predictor_class

    chosen = {kind: {"device": device} for kind in kinds if "device" in predictor_class(kind).defaults()}
    if chosen and device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("--torch-device cuda: torch sees no CUDA device here; use cpu or auto")
    return chosen


def _bench_data(args: argparse.Namespace, space) -> tuple[Path, bool]:
    """The table to bench on, and whether to read it one row per network."""
    from hwnas.controller.data import TABLES, table_path

    if args.data is not None:
        return args.data, args.one_per_network
    if not space.label_table:
        raise ValueError(f"{space.name} has no packaged table of labels; give --data FILE")
    return table_path(space.label_table), args.one_per_network or TABLES[space.label_table].copies


def cmd_predictor_bench(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from hwnas.controller.learning.data import nb201_samples, read_space_table, table_samples
    from hwnas.controller.learning.jobs import bench_table, results_json
    from hwnas.controller.reporting.tables import text_table
    from hwnas.controller.spaces import get_space
    from hwnas.predictors import get_predictor, predictor_class
    from hwnas.predictors.evaluate import bench
    from hwnas.predictors.progress import epochs_reported_to

    try:
        space = get_space(args.space)
        data, one_per_network = _bench_data(args, space)
        cell_graph = space.predictor_features == "nb201-cell"
        default_kinds = "ridge,svr,stacked,flops" + (",gcn" if cell_graph else "")
        kinds = [k for k in (args.kinds or default_kinds).split(",") if k]
        configs = merged({"gcn": {"epochs": args.gcn_epochs}} if args.gcn_epochs else {},
                         torch_device_config(kinds, args.torch_device), predictor_settings(args.settings, kinds))
        for kind in kinds:  # kinds and settings are checked before the table is read
            get_predictor(kind, **configs.get(kind, {}))
        if args.seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
        if not data.is_file():
            raise FileNotFoundError(f"no such file: {data}")
        table = read_space_table(data, args.target, space, args.device, one_per_network)
        whole_cg = any("graphs" in predictor_class(kind).needs for kind in kinds)
        if cell_graph:
            samples = nb201_samples(table.encodings, table.y, flops="flops" in kinds, graphs=whole_cg,
                                    cell_graph=args.cell_graph)
        else:
            samples = table_samples(space, table.encodings, table.y, flops="flops" in kinds, graphs=whole_cg)
        if args.train + args.valid >= len(samples):
            raise ValueError(f"--train {args.train} + --valid {args.valid} leave no test architecture of "
                             f"{len(samples)}")
        higher = args.better == "higher" if args.better else "acc" in args.target.lower()
        left_out = (f"{table.dropped_unconnected} without a network, {table.dropped_missing} without a value"
                    + (f", {table.dropped_copies} copies of a network" if one_per_network else ""))
        print(f"{data.name}: {len(samples)} {space.name} architectures with {args.target} ({left_out} left out); "
              f"{args.train} train / {args.valid} validation / {len(samples) - args.train - args.valid} test, "
              f"{args.seeds} seed(s)", flush=True)
        bar = tqdm(total=len(kinds) * args.seeds, unit="fit", disable=args.quiet)

        def fitted(kind: str, seed: int) -> None:
            bar.set_description(f"{kind} seed {seed} done")
            bar.set_postfix_str("")
            bar.update(1)

        def trained(done: int, epochs: int, valid_loss: float) -> None:  # a GNN's fit takes minutes
            bar.set_postfix_str(f"epoch {done}/{epochs}, validation loss {valid_loss:.4g}")

        with epochs_reported_to(trained):
            results = bench(samples, kinds, range(args.seeds), args.train, args.valid, configs, fitted,
                            keep_predictions=args.plot is not None, higher_is_better=higher)
        bar.close()
    except (ValueError, FileNotFoundError) as exc:
        return fail("predictor bench", exc)
    print(text_table(bench_table(results)))
    print("BRP: measured within ±k of the prediction (BRP-NAS); nnM: |prediction − measured| ≤ k·measured "
          f"(nn-Meter); NDCG@10 with {'higher' if higher else 'lower'} {args.target} better; mean±std over seeds")
    if args.json:
        args.json.write_text(results_json(results))
        print(f"per-seed metrics: {args.json}")
    if args.plot:
        from hwnas.controller.learning.plots import scatter

        try:
            print(f"plot: {scatter(results, args.plot, args.target)}")
        except ValueError as exc:
            return fail("predictor bench", exc)
    return 0


def _source(text: str) -> tuple[Path, str]:
    """'FILE:COLUMN'; an empty FILE (':lat_ms_pixel3') means the packaged NB-201 table."""
    from hwnas.controller.data import nb201_table_path

    path, sep, column = text.rpartition(":")
    if not sep or not column:
        raise argparse.ArgumentTypeError(f"a transfer source must look like FILE:COLUMN, got {text!r}")
    return (Path(path) if path else nb201_table_path()), column


def cmd_predictor_transfer(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from hwnas.controller.data import nb201_table_path
    from hwnas.controller.learning.data import nb201_samples, read_nb201_table
    from hwnas.controller.reporting.tables import text_table
    from hwnas.predictors.transfer import as_rows, curve, steps

    data = args.data or nb201_table_path()
    try:
        sizes = [int(n) for n in args.samples.split(",")]
        if not sizes or min(sizes) < 2:
            raise ValueError(f"--samples must be sizes >= 2, got {args.samples!r}")
        if args.pretrain < 10:
            raise ValueError(f"--pretrain must be >= 10 architectures per source, got {args.pretrain}")
        target = read_nb201_table(data, args.target)
        tables = [read_nb201_table(path, column) for path, column in args.transfer_from]
        index = {tuple(x): k for k, x in enumerate(target.encodings)}
        common = [tuple(x) for x in target.encodings]
        for table, (path, column) in zip(tables, args.transfer_from, strict=True):
            known = {tuple(x) for x in table.encodings}
            common = [x for x in common if x in known]
            if not common:
                raise ValueError(f"{path}:{column} shares no architecture with the target")
        rows = [index[x] for x in common]
        samples = nb201_samples([target.encodings[k] for k in rows], target.y[rows], flops=False)
        sources = []
        for table in tables:
            value = {tuple(x): y for x, y in zip(table.encodings, table.y, strict=True)}
            sources.append(samples.with_y([value[x] for x in common]))
        config = {"epochs": args.gcn_epochs} if args.gcn_epochs else {}
        methods, selections = args.methods.split(","), args.selections.split(",")
        total = steps(sizes, range(args.seeds), methods, selections)
        with warnings_summarised(), tqdm(total=total, unit="fit", disable=args.quiet, leave=False) as bar:

            begun = []

            def progress(what: str) -> None:  # called as each step begins: the one before it is done
                bar.update(1 if begun else 0)
                begun.append(what)
                bar.set_description_str(what)

            points = curve(samples, sources, sizes, range(args.seeds), methods=methods, n_test=args.test,
                           pretrain_samples=args.pretrain, config=config, progress=progress, selections=selections)
    except (ValueError, FileNotFoundError) as exc:
        return fail("predictor transfer", exc)
    print(f"{args.target} from {', '.join(f'{p.name}:{c}' for p, c in args.transfer_from)}; "
          f"{len(samples)} shared architectures, {args.test} test per seed, {args.seeds} seed(s)")
    print(text_table(as_rows(points)))
    return 0


def cmd_predictor_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from hwnas.controller.learning.jobs import train_from_store
    from hwnas.controller.store import Store
    from hwnas.predictors import predictor_class
    from hwnas.predictors.progress import epochs_reported_to

    if not dataset_exists(args.db):
        return fail("predictor train", FileNotFoundError(f"no dataset at {args.db}"))
    try:
        predictor_class(args.kind)
        with Store(args.db) as store:
            config = merged(torch_device_config([args.kind], args.torch_device),
                            predictor_settings(args.settings, [args.kind])).get(args.kind)
            with tqdm(unit="epoch", desc=f"{args.kind} for {args.device}", disable=args.quiet, leave=False) as bar:

                def trained(done: int, epochs: int, valid_loss: float) -> None:  # a GCN's fit takes minutes
                    bar.total, bar.n = epochs, done
                    bar.set_postfix_str(f"validation loss {valid_loss:.4g}")

                with epochs_reported_to(trained):
                    folder, metrics, space = train_from_store(store, args.db, args.device, args.kind,
                                                              seed=args.seed, config=config, sources=args.sources,
                                                              space=args.space, layers_from=args.layers_from)
    except ValueError as exc:
        return fail("predictor train", exc)
    from hwnas.controller.learning.jobs import held_out_summary

    print(f"saved {args.kind} predictor for {args.device} ({space} networks) to {folder}")
    print(held_out_summary(metrics))
    return 0
