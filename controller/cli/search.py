"""``hwnas search``: a device-specific architecture search, and ``hwnas search report`` over several runs."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from hwnas.controller.cli import common
from hwnas.controller.cli.measure import add_measurement_options


def _predictors(text: str) -> dict[str, str]:
    """'ridge' (every objective) or 'latency=gcn,accuracy=ridge'."""
    from hwnas.predictors import predictor_class

    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, kind = part.rpartition("=")
        try:
            predictor_class(kind)
        except (KeyError, ValueError) as exc:
            raise argparse.ArgumentTypeError(f"--predictor: {exc}") from None
        out[name if sep else "*"] = kind
    return out


def _latency_predictor(args: argparse.Namespace):
    """BRP-NAS's candidate filter: a saved predictor folder, the device's own beside --db, or none."""
    from hwnas.controller.learning.jobs import artifact_dir
    from hwnas.predictors import load

    if args.latency_predictor == "none":
        return None
    if args.latency_predictor == "auto":
        found = [artifact_dir(args.db, args.device, kind) for kind in ("gcn", "stacked", "svr", "ridge")]
        folder = next((f for f in found if (f / "card.json").exists()), None)
        return load(folder) if folder else None
    try:
        return load(Path(args.latency_predictor))
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"--latency-predictor {args.latency_predictor}: {exc}") from None


def _settings(args: argparse.Namespace, objectives: list[str]) -> dict:
    """The --algo's own settings from the flags named as its fields, with the predictors it is given
    ready-made (BRP-NAS's latency filter, LINAS's transfer sources)."""
    from hwnas.controller.search.algorithms import setting_names

    own = setting_names(args.algo)
    settings = {k: v for k, v in vars(args).items() if k in own}
    if "latency_predictor" in own:
        settings["latency_predictor"] = _latency_predictor(args)
    if "sources" in own:
        settings["sources"] = _transfer_sources(args, objectives)
    return settings


def _transfer_sources(args: argparse.Namespace, objectives: list[str]) -> dict:
    """Other devices' latencies for a ``--predictor latency=sources``: the space's packaged device tables and
    the dataset's other keys (``jobs.transfer_sources``), so a new device's search starts from a good predictor."""
    from hwnas.controller.search.linas import DEFAULT_PREDICTOR
    from hwnas.predictors.base import transfers

    kinds = args.predictors or {}
    wanted = [o for o in objectives if transfers(kinds.get(o, kinds.get("*", DEFAULT_PREDICTOR)))]
    if not wanted:
        return {}
    if wanted != ["latency"]:
        raise ValueError(f"--predictor: a transferring kind (sources) learns the latency objective from other "
                         f"devices, not {', '.join(o for o in wanted if o != 'latency')}")
    from hwnas.controller.learning.jobs import transfer_sources
    from hwnas.controller.store import Store

    with Store(args.db) as store:
        learned, _ = transfer_sources(store, args.space, args.device)
    return {"latency": learned}


def _space(args: argparse.Namespace):
    """The space searched: ``--space`` with its options, confined to ``--restrict``'s modules if given."""
    if args.restrict:
        from hwnas.controller.autobuild.restricted import restricted_space

        return restricted_space(args.restrict, args.space, common.space_options(args))
    from hwnas.controller.spaces import get_space

    return get_space(args.space, **common.space_options(args))


def cmd_search(args: argparse.Namespace) -> int:
    """A thin user of ``hwnas.Lab.search``: the flags become a lab, the run's settings and its progress bar."""
    if args.search_command == "report":
        return cmd_search_report(args)
    from tqdm import tqdm

    from hwnas.controller.cli.fleet_flags import fleet_config
    from hwnas.controller.cli.measure import plan_details
    from hwnas.controller.errors import DeviceError
    from hwnas.controller.fleet import FleetConfig
    from hwnas.controller.lab import Lab
    from hwnas.controller.search.objectives import get_objectives
    from hwnas.controller.search.run import SearchFailed

    ahead = threading.Semaphore(0)  # measurements the bar counted as they returned, before their batch settled

    def measured_one(device_key: str, arch_id: str) -> None:
        """A worker thread's: the bar moves as each measurement returns, not when its whole batch has."""
        bar.update(1)
        ahead.release()

    try:
        if not args.device:
            raise ValueError("--device KEY is required (the device key whose agents measure)")
        if args.evals < 1:
            raise ValueError(f"--evals must be >= 1, got {args.evals}")
        space = _space(args)
        objectives = get_objectives(args.objectives)
        names = [o.name for o in objectives]
        settings = _settings(args, names)
        out = args.out or Path("runs") / f"{space.name}-{args.device}-{args.algo}-s{args.seed}"
        measured = any(o.source == "measured" for o in objectives)
        config = fleet_config(args, [args.device], note=print, on_done=measured_one) if measured else FleetConfig()
        details = plan_details(args) if measured else {}
    except (ValueError, KeyError, OSError) as exc:
        return common.fail("search", exc)
    bar = tqdm(total=args.evals, desc=f"{args.algo} on {args.device}", unit="eval", disable=args.quiet)

    def progress(evaluation, hv: float) -> None:
        if not ahead.acquire(blocking=False):  # not counted yet: cached, failed, or a twin of a measured one
            bar.update(1)
        best = ", ".join(f"{n}={v:.4g}" for n, v in evaluation.values.items()) or evaluation.error[:40]
        bar.set_postfix_str(f"it {evaluation.iteration} hv {hv:.4f} last {best}", refresh=False)

    def note(text: str) -> None:
        (bar.write if not args.quiet else print)(text)

    try:
        with Lab(args.db, fleet=config, connect_timeout_s=args.connect_timeout) as lab:
            search = lab.search(args.device, space, names, algo=args.algo, evals=args.evals, seed=args.seed,
                                out=out, accuracy=args.accuracy, backend=args.backend,
                                model_format=args.model_format or "", protocol=args.protocol,
                                params=dict(args.param or []), batch_size=args.batch_size, priority=args.priority,
                                settings=settings, hv_bounds=args.hv_bounds, restrict=str(args.restrict or ""),
                                progress=progress, note=note, **details)
            run = search.result()
    except KeyboardInterrupt:
        bar.close()
        print("\nstopped; run the same command again to resume (measurements so far are in the store)",
              file=sys.stderr)
        return 130
    except SearchFailed as exc:
        bar.close()
        print(f"hwnas search: {exc}", file=sys.stderr)
        return 1
    except (ValueError, ConnectionError, RuntimeError, OSError, DeviceError) as exc:
        bar.close()
        return common.fail("search", exc)
    bar.close()
    print(f"{run.evaluations} evaluations, final hypervolume {run.hypervolume:.4f}, {len(run.front)} architectures "
          f"on the measured front; wrote {out}/ (run.json, measured.csv, pareto.csv, pareto.png, hypervolume.png)")
    common.report_causes("search", run.failures, run.evaluations)
    return 0


def cmd_search_report(args: argparse.Namespace) -> int:
    from hwnas.controller.reporting.tables import text_table
    from hwnas.controller.search.hypervolume import parse_bounds
    from hwnas.controller.search.report import group_label, group_runs, load_traces, write_report
    from hwnas.controller.search.run import read_run

    try:
        groups = group_runs(args.runs)
        if args.hv_bounds and len(groups) > 1:
            raise ValueError(f"--hv-bounds fits one group of runs; these are {len(groups)}: "
                             f"{'; '.join(map(group_label, groups))}")
        bounds = None
        if args.hv_bounds:
            summary, _ = read_run(args.runs[0])
            bounds = parse_bounds(args.hv_bounds, [o["name"] for o in summary["objectives"]],
                                  [1.0 if o["minimise"] else -1.0 for o in summary["objectives"]])
        traced = [(group, *load_traces(folders, bounds)) for group, folders in groups.items()]
        rows = write_report([(group_label(group), traces) for group, traces, _ in traced], args.out,
                            args.title or f"{len(args.runs)} runs")
    except ValueError as exc:
        return common.fail("search report", exc)
    if len(groups) > 1:
        print(f"{len(groups)} groups of runs that compare (one space, device key and set of objectives each); "
              "each is normalised and summarised on its own")
    print(text_table([["group", "algo", "runs", "evaluations", "final hypervolume (mean ± SE)"]] +
                     [[r["group"], r["algo"], str(r["runs"]), str(r["evaluations"]),
                       f"{r['final_hv_mean']:.4f} ± {r['final_hv_se']:.4f}"] for r in rows], numbers_right=False))
    for group, _, bounds in traced:
        print(f"{group_label(group)}: normalisation (minimisation form) lower {bounds.lower.tolist()}, "
              f"upper {bounds.upper.tolist()}")
    plots = "hypervolume.png" if len(groups) == 1 else f"hypervolume-1..{len(groups)}.png"
    print(f"wrote {args.out}/hypervolume.csv and {plots}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    from hwnas.controller.search.algorithms import ALGORITHMS
    from hwnas.controller.search.evolution import INNER

    s = sub.add_parser(
        "search", help="device-specific architecture search (LINAS, NSGA-II, random); `search report` compares runs",
        description="Search a space for the Pareto front of the objectives on one device key, measuring "
                    "through the device's agents. Re-running a stopped search replays its measurements from "
                    "the store. `hwnas search report RUN_DIR...` plots hypervolume over several runs.")
    s.add_argument("--space", default="nb201", help="search space (default %(default)s)")
    s.add_argument("--device", metavar="KEY", type=common.DEVICE_KEY, help="device key whose agents measure (required)")
    s.add_argument("--objectives", default="latency,accuracy",
                   help="two or more of latency, energy, power, flops, params, accuracy (default %(default)s)")
    s.add_argument("--algo", default="linas", choices=sorted(ALGORITHMS))
    s.add_argument("--evals", type=int, default=200, help="architectures to evaluate (default %(default)s)")
    s.add_argument("--population", type=int, default=50, help="population per iteration (default %(default)s)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--accuracy", default=None, metavar="SPEC",
                   help="accuracy evaluator: table[:COLUMN] (the space's packaged table: nb201, nas-bench-macro; "
                        "the default where there is one), a table by name (nb201:acc_cifar100_test), "
                        "predictor:PATH, gennape:PATH (hwnas predictor gennape pretrain/finetune), "
                        "proxy:params or proxy:macs (log10 of the network's size: a stand-in, not an accuracy, "
                        "for spaces with no accuracy figures such as transformer), or module:function taking a "
                        "hwnas.controller.spaces.Candidate")
    s.add_argument("--restrict", type=Path, default=None, metavar="REDUCED_SPACE_JSON",
                   help="AutoBuild-NAS: search only networks whose every stage is one of the modules `hwnas "
                        "autobuild build` ranked best (its reduced_space.json; the union over its equations); "
                        "evolution then changes whole stages")
    s.add_argument("--db", type=common.db_target, default=Path("hwnas.db"),
                   help="store (SQLite file or SQLAlchemy URL)")
    s.add_argument("--out", type=Path, default=None, help="output folder (default runs/SPACE-DEVICE-ALGO-sSEED)")
    linas = s.add_argument_group("LINAS")
    linas.add_argument("--predictor", dest="predictors", type=_predictors, default={}, metavar="KIND|OBJ=KIND,...",
                       help="predictor per objective (ridge, svr, stacked, gcn, ...; default ridge as LINAS)")
    linas.add_argument("--inner", default="nsga2", choices=sorted(INNER), help="pymoo algorithm on the predictors")
    linas.add_argument("--inner-evals", type=int, default=20_000, help="predictor evaluations per iteration")
    brp = s.add_argument_group("BRP-NAS", "latency-constrained accuracy search (--algo brpnas; nb201)")
    brp.add_argument("--latency-max", dest="latency_max_ms", type=float, default=None, metavar="MS",
                     help="the latency limit (required)")
    brp.add_argument("--iterations", type=int, default=5, help="iterations I of data selection (default 5)")
    brp.add_argument("--alpha", type=float, default=0.5, help="share taken from the ranking's top (default 0.5)")
    brp.add_argument("--latency-predictor", default="auto", metavar="auto|none|PATH",
                     help="drop candidates this predictor puts over --latency-max; auto: the device's trained "
                          "predictor beside --db, if any (default auto)")
    brp.add_argument("--brp-epochs", type=int, default=None, help="binary relation predictor epochs (default 100)")
    evo = s.add_argument_group("evolution (LINAS inner loop and NSGA-II)")
    evo.add_argument("--crossover", type=float, default=0.9, help="SBX probability (default %(default)s)")
    evo.add_argument("--mutation", type=float, default=0.02, help="mutation probability per variable")
    s.add_argument("--hv-bounds", default="", metavar="OBJ=LOW:HIGH,...",
                   help="hypervolume normalisation in natural units (default: the first population's range)")
    add_measurement_options(s)
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    common.add_space_options(s)
    s.set_defaults(func=cmd_search, search_command=None)
    r = s.add_subparsers(dest="search_command", metavar="report").add_parser(
        "report", help="hypervolume vs evaluations over several runs, mean ± standard error per algorithm")
    r.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR")
    r.add_argument("--out", type=Path, default=Path("runs/report"), help="output folder (default %(default)s)")
    r.add_argument("--hv-bounds", default="", metavar="OBJ=LOW:HIGH,...", help="common normalisation")
    r.add_argument("--title", default=None)
