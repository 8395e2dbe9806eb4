"""``hwnas latbench``: build (through the fleet), inspect, export and import LatBench-style datasets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hwnas.controller.cli import common
from hwnas.controller.cli.common import (
    add_space_options,
    dataset_exists,
    db_target,
    fail,
    param,
    space_options,
)
from hwnas.controller.cli.fleet_flags import add_fleet_options, fleet_config
from hwnas.controller.cli.measure import add_detail_options, plan_details
from hwnas.controller.errors import SettingError
from hwnas.controller.graph.backend_formats import backend_names


def add_parser(sub: argparse._SubParsersAction) -> None:
    latbench = sub.add_parser("latbench", help="LatBench-style datasets: build, status, export").add_subparsers(
        dest="latbench_command", required=True, metavar="SUBCOMMAND")
    lb = latbench.add_parser("build", help="measure a space's architectures on device keys (resumable)")
    lb.add_argument("--space", required=True)
    lb.add_argument("--devices", required=True, metavar="KEY[,KEY...]", type=common.DEVICE_KEYS)
    which = lb.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every architecture (NB-201: the 15,284 connected)")
    which.add_argument("--sample", type=int, metavar="N", help="N random architectures")
    which.add_argument("--reference-set", action="store_true",
                       help="the space's fixed reference networks (10), what a new device measures first: they pin "
                            "down how it relates to the devices measured before (its hardware embedding), and a "
                            "`predictor train --kind sources` learns from them")
    which.add_argument("--next", type=common.whole(1), metavar="N",
                       help="the N networks the (one) device key should measure next: the most informative given "
                            "what it and the other keys measured (docs/predictors.md); run again after they are "
                            "measured for N more")
    lb.add_argument("--sources", default=None, metavar="KEY[,KEY...]", type=common.DEVICE_KEYS,
                    help="with --next: the other device keys to learn from (default: the space's packaged device "
                         "tables and every other key with >= 10 measurements of the space)")
    lb.add_argument("--seed", type=int, default=0)
    lb.add_argument("--protocol", default="latbench", choices=["latbench", "adaptive", "fixed"])
    lb.add_argument("--param", type=param, action="append", metavar="KEY=VALUE", help="protocol parameter")
    lb.add_argument("--batch-size", type=common.whole(1), default=1)
    add_detail_options(lb)  # for new jobs: a job already measured keeps its record
    lb.add_argument("--backend", action="append", metavar="[KEY=]NAME",
                    help=f"agent runtime, one of {backend_names()} (default onnxruntime); KEY=NAME for one "
                         "device key; repeatable")
    lb.add_argument("--model-format", action="append", metavar="[KEY=]NAME",
                    help="model sent: onnx, tflite, tflite-int8, tflite-int8-full, edgetpu (default: what the "
                         "backend runs first); repeatable")
    lb.add_argument("--db", type=db_target, required=True, metavar="PATH", help="SQLite file (or a SQLAlchemy URL)")
    lb.add_argument("--priority", type=int, default=0,
                    help="higher runs first within each device key's queue (default %(default)s)")
    lb.add_argument("--campaign", default=None, type=common.CAMPAIGN,
                    help="campaign name (default: SPACE-PROTOCOL-nN-sSEED, or SPACE-PROTOCOL-all: one per build, "
                         "the same when the same command runs again)")
    lb.add_argument("--remeasure-warned", action="store_true",
                    help="measure again the jobs whose record carries agent warnings (other processes busy, "
                         "throttling); the new record replaces the warned one")
    lb.add_argument("--retry-failed", action="store_true",
                    help="queue this campaign's failed jobs again with fresh attempts (a plain re-run resumes only "
                         "queued and interrupted jobs)")
    lb.add_argument("--quiet", action="store_true", help="no progress bars")
    add_space_options(lb)
    add_fleet_options(lb)
    lb.set_defaults(func=cmd_latbench_build)
    ls = latbench.add_parser("status", help="jobs per device key and state")
    ls.add_argument("--db", type=db_target, required=True)
    ls.add_argument("--campaign", default=None, type=common.CAMPAIGN)
    ls.set_defaults(func=cmd_latbench_status)
    le = latbench.add_parser("export", help="one row per architecture x device key (see docs/dataset.md)")
    le.add_argument("--db", type=db_target, required=True)
    le.add_argument("--format", choices=["csv", "parquet"], default="parquet")
    le.add_argument("--out", type=Path, required=True)
    le.add_argument("--device", default=None, type=common.DEVICE_KEY, help="only this device key")
    le.add_argument("--exclude-warned", action="store_true",
                    help="leave out records the agent attached warnings to (column warnings_json)")
    le.set_defaults(func=cmd_latbench_export)
    li = latbench.add_parser("import", help="add a public table or one of our exports to the dataset")
    li.add_argument("file", type=Path, metavar="FILE")
    li.add_argument("--db", type=db_target, required=True)
    li.add_argument("--format", required=True, choices=["nb201-table", "eagle-pickle", "hwnas"])
    li.add_argument("--device", type=common.DEVICE_KEY,
                    help="device key the table's latencies belong to (nb201-table, eagle-pickle)")
    li.add_argument("--column", help="latency column of an nb201-table, e.g. lat_ms_pixel3")
    li.add_argument("--source", help="name recorded as protocol 'imported:<source>' (default: the file name)")
    li.add_argument("--classes", type=int, default=10, help="NB-201 classifier outputs the table was timed with")
    li.set_defaults(func=cmd_latbench_import)


def cmd_latbench_build(args: argparse.Namespace) -> int:
    """A thin user of ``hwnas.Lab.latbench``: the flags become a lab (``fleet_config``) and a campaign."""
    from tqdm import tqdm

    from hwnas.controller.errors import DeviceError
    from hwnas.controller.fleet import campaign
    from hwnas.controller.lab import Lab
    from hwnas.controller.spaces import get_space

    try:
        space = get_space(args.space, **space_options(args))
        devices = args.devices
        config = fleet_config(args, devices, note=tqdm.write)
        archs, chosen = _chosen_archs(args, space)
        name = args.campaign or f"{space.name}-{args.protocol}-{chosen}"
    except (ValueError, NotImplementedError, OSError) as exc:
        return fail("latbench build", exc)
    with Lab(args.db, fleet=config, connect_timeout_s=args.connect_timeout) as lab:
        if args.retry_failed:
            print(f"{lab.store.retry_failed(name, devices)} failed job(s) queued again", flush=True)
        if args.remeasure_warned:
            print(f"{lab.store.remeasure_warned(name, devices)} job(s) with warned records queued again",
                  flush=True)
        try:
            build = lab.latbench(devices, space, archs=archs, protocol=args.protocol, params=dict(args.param or []),
                                 backend=args.backend or [], model_format=args.model_format or [],
                                 batch_size=args.batch_size, campaign=name, priority=args.priority,
                                 progress=not args.quiet, **plan_details(args))
        except (ValueError, DeviceError) as exc:
            return fail("latbench build", exc)
        print(f"campaign {name!r}: {len(archs)} architectures x {len(devices)} device key(s); {build.added} new "
              f"job(s) queued in {args.db}", flush=True)
        try:
            summary = build.summary()
        except KeyboardInterrupt:
            print("\nstopped; run the same command again to resume", file=sys.stderr)
            return 130
        except OSError as exc:
            return fail("latbench build", exc)
    print(f"this build: {campaign.summary_line(summary.counts)}")
    if summary.quarantined:
        from hwnas.controller.fleet.fleet import QuarantinedKeys

        print(f"hwnas latbench build: {QuarantinedKeys(summary.quarantined)}", file=sys.stderr)
        return 1
    if summary.failures:
        from hwnas.controller.reporting.tables import failure_summary

        print(f"hwnas latbench build: {failure_summary(summary.failures)}\n(fix the cause, then run again with "
              "--retry-failed)", file=sys.stderr)
        return 1
    return 0


def _chosen_archs(args: argparse.Namespace, space) -> tuple[list[list[int]], str]:
    """The architectures ``latbench build`` queues, and the word that names them in the campaign's name."""
    if args.sources is not None and not args.next:
        raise SettingError("sources", "are for --next (which networks a device measures next), not a fixed set")
    if args.all:
        return [x for x in space.enumerate() if space.has_network(x)], "all"
    if args.sample is not None:
        return common.sampled(space, args.sample, args.seed), f"n{args.sample}-s{args.seed}"
    from hwnas.controller.learning.next_networks import next_for_device, reference_set

    if args.reference_set:
        return reference_set(space, seed=args.seed), "reference"
    if len(args.devices) != 1:
        raise SettingError("devices", f"must be one device key with --next (each device's next networks differ), "
                                      f"got {len(args.devices)}: run once per key")
    from hwnas.controller.store import Store

    with Store(args.db) as store:
        archs, learned_from = next_for_device(store, space, args.devices[0], args.next, args.sources, args.seed)
    print(f"the {len(archs)} most informative networks for {args.devices[0]} to measure next, by what "
          f"{learned_from} measured", flush=True)
    return archs, "next"


def cmd_latbench_status(args: argparse.Namespace) -> int:
    from hwnas.controller.store import Store

    if not dataset_exists(args.db):
        return fail("latbench status", FileNotFoundError(f"no dataset at {args.db}"))
    with Store(args.db, read_only=True) as store:
        counts = store.counts(args.campaign)
        submitters = store.submitters(args.campaign)
    print(f"{'device key':24} {'queued':>8} {'leased':>8} {'done':>8} {'failed':>8}")
    for key, states in sorted(counts.items()):
        print(f"{key:24} {states['queued']:>8} {states['leased']:>8} {states['done']:>8} {states['failed']:>8}")
    if submitters:
        print("submitted by: " + "; ".join(f"{who} ({n} job(s))" for who, n in submitters.items()))
    return 0


def cmd_latbench_export(args: argparse.Namespace) -> int:
    from hwnas.controller.store import Store
    from hwnas.controller.store.export import export

    if not dataset_exists(args.db):
        return fail("latbench export", FileNotFoundError(f"no dataset at {args.db}"))
    try:
        with Store(args.db, read_only=True) as store:
            n = export(store, args.out, args.format, args.device, args.exclude_warned)
            left_out = store.warned_count(args.device) if args.exclude_warned else 0
    except (ValueError, OSError) as exc:
        return fail("latbench export", exc)
    print(f"wrote {n} rows to {args.out}" + (f"; --exclude-warned left out {left_out} record(s) with warnings "
                                             "(a busy neighbour, throttling: see their warnings_json; "
                                             "`latbench build --remeasure-warned` measures them again)"
                                             if left_out else ""))
    return 0


def cmd_latbench_import(args: argparse.Namespace) -> int:
    import pickle

    from hwnas.controller.store import Store, importers

    if not args.file.is_file():
        return fail("latbench import", FileNotFoundError(f"no such file: {args.file}"))
    needs_device = args.format in ("nb201-table", "eagle-pickle")
    if needs_device and not args.device:
        return fail("latbench import", ValueError(f"--device KEY is required for --format {args.format}"))
    if args.format == "nb201-table" and not args.column:
        return fail("latbench import", ValueError("--column (e.g. lat_ms_pixel3) is required for nb201-table"))
    try:
        with Store(args.db) as store:
            if args.format == "nb201-table":
                report = importers.import_nb201_table(store, args.file, args.column, args.device, args.source,
                                                      args.classes)
            elif args.format == "eagle-pickle":
                report = importers.import_eagle_pickle(store, args.file, args.device, args.source, args.classes)
            else:
                report = importers.import_hwnas_export(store, args.file)
    except (ValueError, pickle.UnpicklingError, OSError) as exc:
        return fail("latbench import", exc)
    print(f"{args.file.name}: {report}")
    return 0
