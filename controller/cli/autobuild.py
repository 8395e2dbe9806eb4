"""``hwnas autobuild``: learn which modules make networks accurate or fast on a device, and build from them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hwnas.controller.cli.common import add_space_options, db_target, fail, param, report_failures, space_options
from hwnas.controller.cli.fleet_flags import add_fleet_options

OBJECTIVE_HELP = ("NAME=SOURCE: acc=table (the space's accuracy table), acc=table:COLUMN, lat=db:KEY (what the "
                  "store's agents measured on device key KEY, with --db), lat=file:PATH:COLUMN; repeatable")


def add_parser(sub: argparse._SubParsersAction) -> None:
    group = sub.add_parser(
        "autobuild", help="AutoBuild: interpretable module scores per device, networks built from the best",
        description="AutoBuild (\"Building Optimal Neural Architectures using Interpretable Knowledge\"): a "
                    "GATv2 predictor with a feature-embedding MLP ranks networks by target equations of accuracy "
                    "and device latency; its scores say which feature values and which stage modules make a "
                    "network good, and networks are built from the best modules."
    ).add_subparsers(dest="autobuild_command", required=True, metavar="SUBCOMMAND")
    tr = group.add_parser("train", help="fit one predictor per target equation on labelled networks")
    tr.add_argument("--space", required=True, help="a sequence family: nas-bench-macro, ofa-mbv3")
    tr.add_argument("--objective", action="append", required=True, metavar="NAME=SOURCE", help=OBJECTIVE_HELP)
    tr.add_argument("--equation", action="append", metavar="EXPR",
                    help="a target to maximise over standardised objectives, e.g. 'acc - 0.5*lat'; repeatable "
                         "(default: each objective alone, negated where lower is better: measured or latency columns)")
    tr.add_argument("--db", type=db_target, default=None, help="the store db:KEY objectives read")
    tr.add_argument("--max-networks", type=int, default=0, metavar="N",
                    help="train on a random N of the labelled networks (default: all)")
    tr.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the trained set")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="settings",
                    help="a predictor setting (epochs, hidden, layers, lr, batch_size, tau...); repeatable")
    tr.add_argument("--torch-device", choices=["auto", "cpu", "cuda"], default="auto")
    add_space_options(tr)
    tr.set_defaults(func=cmd_autobuild_train)

    ex = group.add_parser("explain", help="feature-value scores, module tables and top subgraphs, as CSV and PNG")
    ex.add_argument("trained", type=Path, metavar="DIR", help="a folder from hwnas autobuild train")
    ex.add_argument("--out", type=Path, default=None, help="where to write (default DIR/explain)")
    ex.add_argument("--top-modules", type=int, default=10, help="modules per stage and equation (default 10)")
    ex.set_defaults(func=cmd_autobuild_explain)

    bu = group.add_parser("build", help="build networks from the top modules; measure them on the objectives' "
                                        "devices through the fleet")
    bu.add_argument("trained", type=Path, metavar="DIR", help="a folder from hwnas autobuild train")
    bu.add_argument("--top-k", type=int, default=5, help="modules per stage to combine (default %(default)s)")
    bu.add_argument("--networks", type=int, default=4, help="networks built per equation (default %(default)s)")
    bu.add_argument("--out", type=Path, default=None, help="where to write (default DIR/built)")
    bu.add_argument("--db", type=db_target, default=None,
                    help="the store: built networks are measured into it on every db:KEY objective's device")
    bu.add_argument("--no-exhaustive", action="store_true",
                    help="skip the exhaustive baseline (the predictor scoring every network of the space)")
    m = bu.add_argument_group("measurement", "with agents given, built networks are measured on each db:KEY device")
    m.add_argument("--backend", action="append", metavar="[KEY=]NAME",
                   help="agent runtime: onnxruntime (default), litert, ...; KEY=NAME for one device key")
    m.add_argument("--model-format", action="append", metavar="[KEY=]NAME", help="model sent (default: the backend's)")
    m.add_argument("--protocol", default="latbench", choices=["latbench", "adaptive", "fixed"])
    m.add_argument("--param", type=param, action="append", metavar="KEY=VALUE", help="protocol parameter")
    m.add_argument("--remeasure-warned", action="store_true",
                   help="measure again the built networks whose record the agent warned about (a busy host)")
    add_fleet_options(bu)
    bu.set_defaults(func=cmd_autobuild_build)


def _note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cmd_autobuild_train(args: argparse.Namespace) -> int:
    import numpy as np

    from hwnas.controller.autobuild.equations import parse_equation
    from hwnas.controller.autobuild.labels import labelled, parse_objective
    from hwnas.controller.autobuild.sequences import sequence_family
    from hwnas.controller.autobuild.training import MIN_NETWORKS, held_out_phrase, train
    from hwnas.controller.cli.common import dataset_exists
    from hwnas.controller.cli.predictor import predictor_settings
    from hwnas.controller.spaces import get_space

    try:
        space = get_space(args.space, **space_options(args))
        sequence_family(space.name)
        objectives = [parse_objective(t) for t in args.objective]
        names = [o.name for o in objectives]
        texts = args.equation or [("-" if o.lower_is_better else "") + o.name for o in objectives]
        equations = [parse_equation(t, names) for t in texts]
        settings = predictor_settings(args.settings, ["autobuild"]).get("autobuild", {})
        fixed = sorted({"categories", "values", "seed", "device"} & set(settings))
        if fixed:
            raise ValueError(f"--set {', '.join(fixed)}: set by the space, --seed and --torch-device instead")
        settings["device"] = args.torch_device
        store = None
        if any(o.device_key for o in objectives):
            if args.db is None:
                raise ValueError("--db is needed: objective(s) "
                                 f"{', '.join(o.text() for o in objectives if o.device_key)} read the store")
            if not dataset_exists(args.db):
                raise FileNotFoundError(f"no dataset at {args.db}")
            from hwnas.controller.store import Store

            store = Store(args.db, read_only=True)
        try:
            data = labelled(space, objectives, store, minimum=MIN_NETWORKS)
        finally:
            if store is not None:
                store.close()
        if 0 < args.max_networks < len(data.encodings):
            data = data.take(np.sort(np.random.default_rng(args.seed).permutation(len(data.encodings))
                                      [:args.max_networks]))
        _note(f"{len(data.encodings)} {space.name} networks with {', '.join(names)}")
        trained = train(data, [o.text() for o in objectives], equations, args.out, space.resolution, settings,
                        args.seed, progress=_note)
    except (ValueError, FileNotFoundError) as exc:
        return fail("autobuild train", exc)
    print(f"trained {len(equations)} AutoBuild predictor(s) on {len(data.encodings)} networks: {trained.folder}")
    for entry in trained.manifest["equations"]:
        rho = entry["valid_spearman"]
        print(f"  {entry['text']}: " + (f"held-out Spearman hop 0 {rho[0]:.3f}, best hop {max(rho):.3f}" if rho
                                         else held_out_phrase(rho, entry.get("held_out", 0))))
    return 0


def cmd_autobuild_explain(args: argparse.Namespace) -> int:
    from hwnas.controller.autobuild.explain import explain
    from hwnas.controller.autobuild.training import open_trained

    try:
        trained = open_trained(args.trained)
        if args.top_modules < 1:
            raise ValueError(f"--top-modules must be >= 1, got {args.top_modules}")
        paths = explain(trained, args.out or args.trained / "explain", args.top_modules)
    except (ValueError, FileNotFoundError) as exc:
        return fail("autobuild explain", exc)
    from hwnas.controller.autobuild.explain import feature_rows
    from hwnas.controller.reporting.tables import text_table

    rows = feature_rows(trained)
    print(text_table([("equation", "category", "value", "FE-MLP score", "training nodes")]
                     + [(r["equation"], r["category"], r["value"], f"{r['score']:.3f}" if r["training_nodes"] else
                         "(unseen)", str(r["training_nodes"])) for r in rows]))
    for path in paths:
        print(f"wrote {path}")
    return 0


def cmd_autobuild_build(args: argparse.Namespace) -> int:
    from hwnas.controller.autobuild.report import build_report
    from hwnas.controller.autobuild.training import open_trained

    try:
        trained = open_trained(args.trained)
        if args.top_k < 1 or args.networks < 1:
            raise ValueError(f"--top-k and --networks must be >= 1, got {args.top_k} and {args.networks}")
        measure = _measurer(args, trained) if (args.agent or args.agents or args.listen) else None
        report = build_report(trained, args.top_k, args.networks, not args.no_exhaustive, args.db, measure,
                              args.out or args.trained / "built", progress=_note)
    except (ValueError, FileNotFoundError, ConnectionError, OSError) as exc:
        return fail("autobuild build", exc)
    print(report.text)
    for path in report.paths:
        print(f"wrote {path}")
    return 0


def _measurer(args: argparse.Namespace, trained):
    """A function measuring architectures on every db:KEY objective's device through the fleet, checked now."""
    from hwnas.controller.autobuild.labels import parse_objective
    from hwnas.controller.cli.fleet_flags import check_agents, fleet_config
    from hwnas.controller.fleet import campaign
    from hwnas.controller.graph.model_formats import check_exportable

    devices = [k for k in (parse_objective(t).device_key for t in trained.manifest["objectives"]) if k]
    if not devices:
        raise ValueError("agents were given but no objective is measured (db:KEY); nothing to measure")
    if args.db is None:
        raise ValueError("--db is needed to measure: the built networks' records go to the store")
    config = fleet_config(args, devices, note=_note)
    plan = campaign.CampaignPlan(campaign=f"autobuild:{trained.folder.name}", device_keys=devices,
                                 protocol=args.protocol, protocol_params=dict(args.param or []), priority=100)
    plans = campaign.plans_by_runtime(plan, args.backend or [], args.model_format or [])
    for p in plans:
        check_exportable(p.model_format)

    def measure(store, space, archs) -> None:
        """Through the one door: an evaluator per device key, all sent before any is fetched, so every key's
        agents measure at once; a network measured before (by any campaign) is not measured again."""
        from dataclasses import replace

        from hwnas.controller.fleet import Fleet
        from hwnas.controller.search.evaluator import Evaluator
        from hwnas.controller.search.measure import FleetMeasurer
        from hwnas.controller.search.objectives import OBJECTIVES

        check_agents(config, args.connect_timeout)
        again = store.remeasure_warned(plan.campaign, devices) if args.remeasure_warned else 0
        candidates = list({c.arch_id: c for c in (space.candidate(x) for x in archs if space.has_network(x))
                           }.values())
        _note(f"measuring {len(candidates)} built network(s) on {', '.join(devices)}"
              + (f" ({again} warned record(s) again)" if again else ""))
        with Fleet(store, config) as fleet:
            doors = {key: Evaluator(space, [OBJECTIVES["latency"]], None,
                                    FleetMeasurer(fleet, replace(p, device_keys=[key])), None)
                     for p in plans for key in p.device_keys}
            for door in doors.values():
                door.send(candidates)
            for key, door in doors.items():
                door.fetch_all()
                report_failures(f"autobuild build ({key})", door)

    return measure
