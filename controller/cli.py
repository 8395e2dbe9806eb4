"""``hwnas``: the controller's command line. A thin skin over the controller's modules."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from controller import __version__
from controller.cli_autogo import add_autogo_parser
from controller.cli_common import (
    add_client_security,
    add_space_options,
    connector,
    dataset_exists,
    db_target,
    fail,
    param,
    space_options,
)
from controller.cli_fleet import add_fleet_options, check_agents, fleet_config
from controller.cli_layers import add_layers_parser
from controller.cli_search import add_search_parser


def _input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """'1,3,224,224' or 'name=1,3,224,224'."""
    name, _, dims = text.rpartition("=")
    try:
        shape = tuple(int(d) for d in dims.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"input shape must look like 1,3,224,224 or x=1,3,224,224: {text!r}") from None
    return name, shape


def _profile_backend(requested: str | None, enabled: list[str], suffix: str) -> str:
    """The backend to profile on: the one asked for, else onnxruntime for ONNX if enabled, else what runs the
    file's format, else the agent's first backend (a LiteRT-only Raspberry Pi gets litert)."""
    from controller.model_formats import BACKEND_FORMATS

    if requested:
        return requested
    wire = "tflite" if suffix == ".tflite" else "onnx"
    if wire == "onnx" and "onnxruntime" in enabled:
        return "onnxruntime"
    for name in enabled:
        if any(fmt == wire or fmt.startswith(wire) for fmt in BACKEND_FORMATS.get(name, ())):
            return name
    if not enabled:
        raise ValueError("the agent reports no enabled backend")
    return enabled[0]


def _profile_model(path: Path, backend: str, requested_format: str | None, input_shape) -> tuple[bytes, str, str]:
    """(bytes, wire format, model format) to send: the file as is when the backend runs its format, else the
    ONNX file converted on the controller (ONNX -> CG -> e.g. TFLite), as campaigns do."""
    from controller.model_formats import check_exportable, format_for, model_format

    data = path.read_bytes()
    own = "tflite" if path.suffix == ".tflite" else "onnx"
    wanted = format_for(backend, requested_format)
    if wanted == own:
        return data, own, own
    if own != "onnx":
        raise ValueError(f"backend {backend!r} runs {wanted}; only ONNX files can be converted (this is {own})")
    check_exportable(wanted)
    from controller.graph.onnx_import import from_onnx

    shape = next((dims for _, dims in input_shape or []), None)
    graph = from_onnx(data, input_shape=shape)
    return model_format(wanted).export(graph, {}), model_format(wanted).wire_format, wanted


def cmd_profile(args: argparse.Namespace) -> int:
    from controller.client import AgentCallError
    from controller.model_formats import FormatUnavailable
    from controller.report import profile_table

    if not args.model.is_file():
        return fail("profile", FileNotFoundError(f"cannot read MODEL {args.model}: no such file"))
    try:
        connect = connector(args)
        with connect(args.agent) as client:
            client.wait_ready(args.connect_timeout)
            backend = _profile_backend(args.backend, list(client.device_info().backends), args.model.suffix)
            model, wire, fmt = _profile_model(args.model, backend, args.model_format, args.input_shape)
            if fmt != ("tflite" if args.model.suffix == ".tflite" else "onnx"):
                print(f"converted {args.model.name} to {fmt} for backend {backend}", file=sys.stderr)
            sha, uploaded = client.ensure_model(model, wire)
            record = client.profile(
                sha, backend=backend, protocol=args.protocol, protocol_params=dict(args.param or []),
                batch_size=args.batch_size, input_shapes=dict(args.input_shape or []), threads=args.threads,
                warmup_runs=args.warmup_runs, return_samples=args.samples, deadline_seconds=args.deadline,
            )
    except (ValueError, OSError, FormatUnavailable) as exc:
        return fail("profile", exc)
    except AgentCallError as exc:
        print(f"hwnas profile: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"model": str(args.model), "uploaded": uploaded, "model_format": fmt, **record.to_dict()},
                         indent=2))
    else:
        print(profile_table([(args.model.name, record)]))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from controller.demo import run_demo

    try:
        run_demo(args.out, args.protocol, args.sample, args.evals)
    except (RuntimeError, ValueError, OSError) as exc:
        return fail("demo", exc)
    return 0


def cmd_space_list(args: argparse.Namespace) -> int:
    from controller.spaces import SPACES

    print(f"{'space':14} {'variables':>9} {'size':>10}  description")
    for name, factory in SPACES.items():
        space = factory()
        print(f"{name:14} {space.n_var:>9} {space.size():>10.3g}  {space.description}")
    return 0


def cmd_space_sample(args: argparse.Namespace) -> int:
    from controller.spaces import get_space
    from controller.spaces.catalog import describe, sample

    try:
        space = get_space(args.space, **space_options(args))
        rows = [describe(space, x) for x in sample(space, args.n, args.seed)]
    except ValueError as exc:
        return fail("space sample", exc)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['arch_id'][:16]}  {row['macs'] / 1e6:9.2f} MMACs  {row['params'] / 1e6:7.3f} M params  "
              f"{row['arch']}")
    return 0


def cmd_space_show(args: argparse.Namespace) -> int:
    from controller.spaces.catalog import describe, parse_arch

    try:
        space, x = parse_arch(args.arch, args.space, **space_options(args))
        info = describe(space, x)
    except ValueError as exc:
        return fail("space show", exc)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if key == "ops":
            value = ", ".join(f"{op}={n}" for op, n in value.items())
        elif key in ("macs", "params"):
            value = f"{value:,}"
        print(f"{key:>13}: {value}")
    return 0


def cmd_space_export(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from controller.spaces import get_space
    from controller.spaces.catalog import export, sample

    try:
        space = get_space(args.space, **space_options(args))
        archs = sample(space, args.n, args.seed)
    except ValueError as exc:
        return fail("space export", exc)
    rows = export(space, archs, args.out,
                  progress=lambda it: tqdm(it, desc=f"export {space.name}", unit="model", disable=args.quiet))
    print(f"wrote {len(rows)} models (ONNX + CG JSON) and {args.out / 'index.csv'}")
    return 0


def cmd_graph_import(args: argparse.Namespace) -> int:
    from controller.graph.onnx_import import from_onnx

    if not args.model.is_file():
        return fail("graph import", FileNotFoundError(f"no such model file: {args.model}"))
    try:
        graph = from_onnx(args.model, input_shape=args.input_shape)
    except ValueError as exc:
        return fail("graph import", exc)
    except MemoryError:
        return fail("graph import", MemoryError(f"not enough memory to import {args.model}"))
    if args.out:
        args.out.write_text(graph.to_json(indent=1))
    summary = {"model": str(args.model), "arch_id": graph.arch_id, "input_shape": list(graph.input_shape),
               "macs": graph.macs(), "params": graph.params(), "ops": dict(sorted(graph.op_counts().items()))}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{args.model.name}: input {list(graph.input_shape)}, {graph.macs() / 1e9:.3f} GMACs, "
              f"{graph.params() / 1e6:.3f} M params, arch_id {graph.arch_id[:16]}")
        for op, n in summary["ops"].items():
            print(f"  {op:>16}  {n}")
    if args.out:
        print(f"wrote {args.out}")
    return 0


def cmd_latbench_build(args: argparse.Namespace) -> int:
    import threading

    from tqdm import tqdm

    from controller import campaign
    from controller.model_formats import FormatUnavailable, check_exportable
    from controller.spaces import get_space
    from controller.spaces.catalog import sample
    from controller.store import Store

    try:
        space = get_space(args.space, **space_options(args))
        devices = [d for d in args.devices.split(",") if d]
        config = fleet_config(args, devices, note=tqdm.write)
        if args.all:
            archs = [x for x in space.enumerate() if space.has_network(x)]
        else:
            archs = sample(space, args.sample, args.seed)
        plan = campaign.CampaignPlan(campaign=args.campaign or f"{space.name}-{args.protocol}", device_keys=devices,
                                     protocol=args.protocol, protocol_params=dict(args.param or []),
                                     batch_size=args.batch_size, priority=args.priority)
        plans = campaign.plans_by_runtime(plan, args.backend or [], args.model_format or [])
        for p in plans:
            check_exportable(p.model_format)
    except (ValueError, NotImplementedError, OSError, FormatUnavailable) as exc:
        return fail("latbench build", exc)
    with Store(args.db) as store:
        added = sum(campaign.enqueue(store, space, archs, p) for p in plans)
        print(f"campaign {plan.campaign!r}: {len(archs)} architectures x {len(devices)} device key(s); "
              f"{added} new job(s) queued in {args.db}", flush=True)
        if args.retry_failed:
            print(f"{store.retry_failed(plan.campaign, devices)} failed job(s) queued again", flush=True)
        if args.remeasure_warned:
            print(f"{store.remeasure_warned(plan.campaign, devices)} job(s) with warned records queued again",
                  flush=True)
        try:
            check_agents(config, args.connect_timeout)
        except ConnectionError as exc:
            return fail("latbench build", exc)
        counts = store.counts(plan.campaign)
        bars = {key: tqdm(total=sum(counts.get(key, {}).values()), initial=counts.get(key, {}).get("done", 0),
                          desc=key, unit="model", position=k, disable=args.quiet)
                for k, key in enumerate(devices)}
        lock = threading.Lock()

        def advance(key: str, _arch_id: str) -> None:
            with lock:
                if key in bars:
                    bars[key].update(1)

        from dataclasses import replace

        from controller.fleet import Fleet

        try:
            with Fleet(store, replace(config, on_done=advance)) as fleet:
                final = fleet.drain(devices)
        except KeyboardInterrupt:
            for bar in bars.values():
                bar.close()
            print("\nstopped; run the same command again to resume", file=sys.stderr)
            return 130
        except OSError as exc:
            return fail("latbench build", exc)
        for bar in bars.values():
            bar.close()
        causes = store.failure_causes(plan.campaign)
    print(campaign.summary_line({k: v for k, v in final.items() if k in devices}))
    if causes:
        from controller.report import failure_summary

        print(f"hwnas latbench build: {failure_summary(causes)}\n(fix the cause, then run again with --retry-failed)",
              file=sys.stderr)
        return 1
    return 0


def cmd_latbench_status(args: argparse.Namespace) -> int:
    from controller.store import Store

    if not dataset_exists(args.db):
        return fail("latbench status", FileNotFoundError(f"no dataset at {args.db}"))
    with Store(args.db, read_only=True) as store:
        counts = store.counts(args.campaign)
    print(f"{'device key':24} {'queued':>8} {'leased':>8} {'done':>8} {'failed':>8}")
    for key, states in sorted(counts.items()):
        print(f"{key:24} {states['queued']:>8} {states['leased']:>8} {states['done']:>8} {states['failed']:>8}")
    return 0


def cmd_latbench_export(args: argparse.Namespace) -> int:
    from controller.store import Store
    from controller.store.export import export

    if not dataset_exists(args.db):
        return fail("latbench export", FileNotFoundError(f"no dataset at {args.db}"))
    try:
        with Store(args.db, read_only=True) as store:
            n = export(store, args.out, args.format, args.device, args.exclude_warned)
    except ValueError as exc:
        return fail("latbench export", exc)
    print(f"wrote {n} rows to {args.out}")
    return 0


def cmd_certs_init(args: argparse.Namespace) -> int:
    from controller.certs import init_lab

    try:
        paths = init_lab(args.dir, args.host or [], args.days, args.force)
    except (FileExistsError, ValueError, OSError) as exc:
        return fail("certs init", exc)
    for path in paths:
        print(f"wrote {path}")
    print("agents:     hwnas-agent serve --host 0.0.0.0 --tls-cert agent.pem --tls-key agent.key "
          "--token-file token [--tls-client-ca ca.pem]")
    print("controller: hwnas ... --tls-ca ca.pem --token-file token "
          "[--tls-cert controller.pem --tls-key controller.key]")
    print("dial-out:   hwnas latbench build ... --listen 0.0.0.0:50060 --tls-cert controller.pem "
          "--tls-key controller.key --tls-ca ca.pem --token-file token")
    print("            hwnas-agent serve --controller HOST:50060 --device-key KEY --controller-ca ca.pem "
          "--token-file token")
    return 0


def cmd_latbench_import(args: argparse.Namespace) -> int:
    import pickle

    from controller.store import Store, importers

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


def cmd_fleet_ls(args: argparse.Namespace) -> int:
    from controller import campaign
    from controller.fleet import registered, survey
    from controller.report import text_table
    from controller.store import Store

    if not args.agents and not args.db:
        return fail("fleet ls", ValueError("give --agents FILE (agents to dial), --db PATH (agents that dialled "
                                            "in), or both"))
    if args.db and not dataset_exists(args.db):
        return fail("fleet ls", FileNotFoundError(f"no dataset at {args.db}"))
    try:
        endpoints = campaign.load_agents(args.agents) if args.agents else []
        connect = connector(args) if endpoints else None
    except (ValueError, OSError) as exc:
        return fail("fleet ls", exc)
    store = Store(args.db) if args.db else None
    try:
        rows = survey(endpoints, connect, store) if endpoints else []
        rows += registered(store) if store is not None else []
    finally:
        if store is not None:
            store.close()
    header = ("device key", "address", "health", "name", "version", "backends", "current job", "queued")
    table = [header] + [(r.device_key, r.address, r.health, r.name, r.version, r.backends, r.current_job,
                         str(r.queued_for_key)) for r in rows]
    print(text_table(table, numbers_right=False) if rows else "no agents")
    return 0 if all(r.health in ("SERVING", "healthy") for r in rows) else 1


def cmd_fleet_forget(args: argparse.Namespace) -> int:
    import time

    from controller.store import Store

    if not args.agents and not args.stale:
        return fail("fleet forget", ValueError("name the agents to forget (NAME or AGENT_ID), or give --stale"))
    if not dataset_exists(args.db):
        return fail("fleet forget", FileNotFoundError(f"no dataset at {args.db}"))
    with Store(args.db) as store:
        known = store.registered_agents()
        now = time.time()
        unknown = sorted(set(args.agents) - {a.name for a in known} - {a.agent_id for a in known})
        if unknown:
            return fail("fleet forget", ValueError(f"no registered agent named {unknown}; `hwnas fleet ls --db "
                                                    f"{args.db}` lists them"))
        chosen = [a for a in known if a.name in args.agents or a.agent_id in args.agents
                  or (args.stale and not a.healthy(now))]
        forgotten = store.forget_agents([a.agent_id for a in chosen])
    for agent in chosen:
        print(f"forgot {agent.name} ({agent.agent_id[:8]}, {agent.device_key})")
    print(f"{forgotten} registration(s) forgotten")
    return 0


def cmd_predictor_bench(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from controller.data import nb201_table_path
    from controller.predictor_data import nb201_samples, read_nb201_table
    from controller.predictor_jobs import bench_table, results_json
    from controller.report import text_table
    from predictors import predictor_class
    from predictors.evaluate import bench

    data = args.data or nb201_table_path()
    try:
        kinds = [k for k in args.kinds.split(",") if k]
        for kind in kinds:
            predictor_class(kind)
        if args.seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
        if not data.is_file():
            raise FileNotFoundError(f"no such file: {data}")
        table = read_nb201_table(data, args.target, args.device)
        samples = nb201_samples(table.encodings, table.y, flops="flops" in kinds, graphs="kgnn" in kinds,
                                cell_graph=args.cell_graph)
        configs = {"gcn": {"epochs": args.gcn_epochs}} if args.gcn_epochs else {}
        print(f"{data.name}: {len(samples)} connected architectures with {args.target} "
              f"({table.dropped_unconnected} unconnected and {table.dropped_missing} without a value left out); "
              f"{args.train} train / {args.valid} validation / {len(samples) - args.train - args.valid} test, "
              f"{args.seeds} seed(s)", flush=True)
        bar = tqdm(total=len(kinds) * args.seeds, unit="fit", disable=args.quiet)

        def fitted(kind: str, seed: int) -> None:
            bar.set_description(f"{kind} seed {seed}")
            bar.update(1)

        results = bench(samples, kinds, range(args.seeds), args.train, args.valid, configs, fitted,
                        keep_predictions=args.plot is not None)
        bar.close()
    except (ValueError, FileNotFoundError) as exc:
        return fail("predictor bench", exc)
    print(text_table(bench_table(results)))
    print("BRP: measured within ±k of the prediction (BRP-NAS); nnM: |prediction − measured| ≤ k·measured "
          "(nn-Meter); mean±std over seeds")
    if args.json:
        args.json.write_text(results_json(results))
        print(f"per-seed metrics: {args.json}")
    if args.plot:
        from controller.predictor_plots import scatter

        try:
            print(f"plot: {scatter(results, args.plot, args.target)}")
        except ValueError as exc:
            return fail("predictor bench", exc)
    return 0


def _source(text: str) -> tuple[Path, str]:
    """'FILE:COLUMN'; an empty FILE (':lat_ms_pixel3') means the packaged NB-201 table."""
    from controller.data import nb201_table_path

    path, sep, column = text.rpartition(":")
    if not sep or not column:
        raise argparse.ArgumentTypeError(f"a transfer source must look like FILE:COLUMN, got {text!r}")
    return (Path(path) if path else nb201_table_path()), column


def cmd_predictor_transfer(args: argparse.Namespace) -> int:
    from controller.data import nb201_table_path
    from controller.predictor_data import nb201_samples, read_nb201_table
    from controller.report import text_table
    from predictors.transfer import as_rows, curve

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
        points = curve(samples, sources, sizes, range(args.seeds), methods=args.methods.split(","), n_test=args.test,
                       pretrain_samples=args.pretrain, config=config,
                       progress=lambda what: print(f"  {what}", file=sys.stderr, flush=True))
    except (ValueError, FileNotFoundError) as exc:
        return fail("predictor transfer", exc)
    print(f"{args.target} from {', '.join(f'{p.name}:{c}' for p, c in args.transfer_from)}; "
          f"{len(samples)} shared architectures, {args.test} test per seed, {args.seeds} seed(s)")
    print(text_table(as_rows(points)))
    return 0


def cmd_predictor_train(args: argparse.Namespace) -> int:
    from controller.predictor_jobs import train_from_store
    from controller.store import Store
    from predictors import predictor_class

    if not dataset_exists(args.db):
        return fail("predictor train", FileNotFoundError(f"no dataset at {args.db}"))
    try:
        predictor_class(args.kind)
        with Store(args.db) as store:
            folder, metrics = train_from_store(store, args.db, args.device, args.kind, seed=args.seed,
                                               sources=[k for k in args.sources.split(",") if k])
    except ValueError as exc:
        return fail("predictor train", exc)
    from controller.predictor_jobs import held_out_summary

    print(f"saved {args.kind} predictor for {args.device} to {folder}")
    print(held_out_summary(metrics))
    return 0


def _shape(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(d) for d in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape must look like 1,3,224,224: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hwnas", description="hwnas controller: hardware-in-the-loop NAS.")
    parser.add_argument("--version", action="version", version=f"hwnas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("profile", help="upload a model to an agent (if needed) and profile it")
    p.add_argument("model", type=Path, metavar="MODEL", help="model file (.onnx, or .tflite for a LiteRT agent)")
    p.add_argument("--agent", required=True, metavar="HOST:PORT", help="agent address, e.g. 127.0.0.1:50151")
    p.add_argument("--backend", default=None,
                   help="runtime on the agent (default: onnxruntime for ONNX if the agent has it, else the agent's "
                        "backend that runs the file's format, else its first backend)")
    p.add_argument("--model-format", default=None,
                   help="send the model as onnx, tflite, tflite-int8, tflite-int8-full or edgetpu (default: what "
                        "the backend runs first); an ONNX file is converted on the controller (pip install "
                        "'hwnas[tflite]')")
    p.add_argument("--protocol", default="latbench", help="latbench | fixed | adaptive (default %(default)s)")
    p.add_argument("--param", type=param, action="append", metavar="KEY=VALUE",
                   help="protocol parameter override, e.g. --param runs=20; repeatable")
    p.add_argument("--batch-size", type=int, default=0, help="batch for a dynamic batch dimension")
    p.add_argument("--input-shape", type=_input_shape, action="append", metavar="[NAME=]D0,D1,...",
                   help="explicit input shape; repeat per input")
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (0: runtime default)")
    p.add_argument("--warmup-runs", type=int, default=None, help="warm-up inferences (default: protocol's)")
    p.add_argument("--deadline", type=float, default=0.0, metavar="SECONDS", help="stop the measurement after this")
    p.add_argument("--samples", action="store_true", help="include raw per-inference samples (with --json)")
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    add_client_security(p)
    p.set_defaults(func=cmd_profile)

    space = sub.add_parser("space", help="search spaces: list, sample, show, export").add_subparsers(
        dest="space_command", required=True, metavar="SUBCOMMAND")
    space.add_parser("list", help="the registered spaces").set_defaults(func=cmd_space_list)
    sp = space.add_parser("sample", help="random architectures of a space")
    sp.add_argument("--space", required=True)
    sp.add_argument("-n", type=int, default=10, help="how many (default %(default)s)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--json", action="store_true")
    add_space_options(sp)
    sp.set_defaults(func=cmd_space_sample)
    sh = space.add_parser("show", help="one architecture: encoding, arch_id, FLOPs, params, ops")
    sh.add_argument("arch", metavar="ARCH", help="string form (any space), or with --space an encoding "
                                                "'0,3,1,...' or an NB-201 index")
    sh.add_argument("--space", default=None)
    sh.add_argument("--json", action="store_true")
    add_space_options(sh)
    sh.set_defaults(func=cmd_space_show)
    ex = space.add_parser("export", help="write random architectures as ONNX + CG JSON with an index.csv")
    ex.add_argument("--space", required=True)
    ex.add_argument("-n", type=int, required=True)
    ex.add_argument("--seed", type=int, default=0)
    ex.add_argument("--out", type=Path, required=True, metavar="DIR")
    ex.add_argument("--quiet", action="store_true", help="no progress bar")
    add_space_options(ex)
    ex.set_defaults(func=cmd_space_export)

    graph = sub.add_parser("graph", help="computation graphs").add_subparsers(
        dest="graph_command", required=True, metavar="SUBCOMMAND")
    gi = graph.add_parser("import", help="import an ONNX CNN: op counts, FLOPs (MACs), params")
    gi.add_argument("model", type=Path, metavar="MODEL.onnx")
    gi.add_argument("--input-shape", type=_shape, default=None, metavar="1,3,224,224",
                    help="fixes dynamic input dimensions")
    gi.add_argument("--out", type=Path, default=None, metavar="cg.json", help="write the CG as canonical JSON")
    gi.add_argument("--json", action="store_true")
    gi.set_defaults(func=cmd_graph_import)

    latbench = sub.add_parser("latbench", help="LatBench-style datasets: build, status, export").add_subparsers(
        dest="latbench_command", required=True, metavar="SUBCOMMAND")
    lb = latbench.add_parser("build", help="measure a space's architectures on device keys (resumable)")
    lb.add_argument("--space", required=True)
    lb.add_argument("--devices", required=True, metavar="KEY[,KEY...]")
    which = lb.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every architecture (NB-201: the 15,284 connected)")
    which.add_argument("--sample", type=int, metavar="N", help="N random architectures")
    lb.add_argument("--seed", type=int, default=0)
    lb.add_argument("--protocol", default="latbench", choices=["latbench", "adaptive", "fixed"])
    lb.add_argument("--param", type=param, action="append", metavar="KEY=VALUE", help="protocol parameter")
    lb.add_argument("--batch-size", type=int, default=1)
    lb.add_argument("--backend", action="append", metavar="[KEY=]NAME",
                    help="agent runtime: onnxruntime (default), litert, torch, simulator, replay; KEY=NAME for one "
                         "device key; repeatable")
    lb.add_argument("--model-format", action="append", metavar="[KEY=]NAME",
                    help="model sent: onnx, tflite, tflite-int8, tflite-int8-full, edgetpu (default: what the "
                         "backend runs first); repeatable")
    lb.add_argument("--db", type=db_target, required=True, metavar="PATH", help="SQLite file (or a SQLAlchemy URL)")
    lb.add_argument("--priority", type=int, default=0,
                    help="higher runs first within each device key's queue (default %(default)s)")
    lb.add_argument("--campaign", default=None, help="campaign name (default: SPACE-PROTOCOL)")
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
    ls.add_argument("--campaign", default=None)
    ls.set_defaults(func=cmd_latbench_status)
    le = latbench.add_parser("export", help="one row per architecture x device key (see docs/dataset.md)")
    le.add_argument("--db", type=db_target, required=True)
    le.add_argument("--format", choices=["csv", "parquet"], default="parquet")
    le.add_argument("--out", type=Path, required=True)
    le.add_argument("--device", default=None, help="only this device key")
    le.add_argument("--exclude-warned", action="store_true",
                    help="leave out records the agent attached warnings to (column warnings_json)")
    le.set_defaults(func=cmd_latbench_export)
    li = latbench.add_parser("import", help="add a public table or one of our exports to the dataset")
    li.add_argument("file", type=Path, metavar="FILE")
    li.add_argument("--db", type=db_target, required=True)
    li.add_argument("--format", required=True, choices=["nb201-table", "eagle-pickle", "hwnas"])
    li.add_argument("--device", help="device key the table's latencies belong to (nb201-table, eagle-pickle)")
    li.add_argument("--column", help="latency column of an nb201-table, e.g. lat_ms_pixel3")
    li.add_argument("--source", help="name recorded as protocol 'imported:<source>' (default: the file name)")
    li.add_argument("--classes", type=int, default=10, help="NB-201 classifier outputs the table was timed with")
    li.set_defaults(func=cmd_latbench_import)

    fleet = sub.add_parser("fleet", help="the lab's agents").add_subparsers(
        dest="fleet_command", required=True, metavar="SUBCOMMAND")
    fl = fleet.add_parser("ls", help="agents (configured and dialled-in): health, identity, current job, queue depth")
    fl.add_argument("--agents", type=Path, metavar="FILE", help="TOML [[agents]] key/address: agents to dial")
    fl.add_argument("--db", type=db_target, default=None,
                    help="dataset whose queue, leases and dialled-in agents to show")
    add_client_security(fl)
    fl.set_defaults(func=cmd_fleet_ls)
    ff = fleet.add_parser("forget", help="drop registrations of agents that dialled in (stopped or replaced ones)")
    ff.add_argument("agents", nargs="*", metavar="NAME|AGENT_ID", help="agents to forget, by name or agent id")
    ff.add_argument("--stale", action="store_true", help="forget every stale agent (silent for 3 heartbeats)")
    ff.add_argument("--db", type=db_target, required=True)
    ff.set_defaults(func=cmd_fleet_forget)

    predictor = sub.add_parser("predictor", help="per-device latency predictors: bench, train").add_subparsers(
        dest="predictor_command", required=True, metavar="SUBCOMMAND")
    pb = predictor.add_parser("bench", help="BRP-NAS evaluation protocol on an NB-201 latency table",
                              description="Fit each predictor on random 900 architectures (100 more for "
                                          "validation), test on the rest, for several seeds; print the accuracy "
                                          "table. Unconnected NB-201 cells are left out.")
    pb.add_argument("--data", type=Path, default=None,
                    help="CSV (or .csv.gz) with arch_str or nb201_index and the target column, or this project's "
                         "export (hwnas latbench export: CSV or Parquet, column arch; --target latency_ms) "
                         "(default: the packaged NB-201 table)")
    pb.add_argument("--device", default=None, metavar="KEY",
                    help="with an export holding several device keys: the one to read")
    pb.add_argument("--target", required=True, metavar="COLUMN", help="e.g. lat_ms_latbench_desktop_cpu_i7_7820x")
    pb.add_argument("--kinds", default="ridge,svr,stacked,flops,gcn",
                    help="comma-separated predictors (default %(default)s; ridge is the additive baseline)")
    pb.add_argument("--seeds", type=int, default=5)
    pb.add_argument("--train", type=int, default=900)
    pb.add_argument("--valid", type=int, default=100)
    pb.add_argument("--gcn-epochs", type=int, default=None, help="cap the GCN's epochs (default: 250, as BRP-NAS)")
    pb.add_argument("--cell-graph", default="pruned", choices=["pruned", "full"],
                    help="the GCN's NB-201 cell graph: pruned (BRP-NAS, default) or full (every edge op, as "
                         "NB-201's reference code runs it and HW-NAS-Bench timed it)")
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
                    help="comma-separated: ridge, sources, gcn, gcn-transfer (default %(default)s; the GCNs take "
                         "minutes per fit)")
    px.add_argument("--pretrain", type=int, default=2000, metavar="N",
                    help="architectures of each source device the transfer learns from (default %(default)s)")
    px.add_argument("--gcn-epochs", type=int, default=None)
    px.set_defaults(func=cmd_predictor_transfer)
    pt = predictor.add_parser("train", help="train a device's predictor on what its agents measured")
    pt.add_argument("--db", type=db_target, required=True)
    pt.add_argument("--device", required=True, metavar="KEY")
    pt.add_argument("--kind", default="gcn", help="predictor kind (default %(default)s)")
    pt.add_argument("--seed", type=int, default=0)
    pt.add_argument("--sources", default="", metavar="KEY[,KEY...]",
                    help="with --kind sources: other device keys of the dataset to transfer from (few-shot)")
    pt.set_defaults(func=cmd_predictor_train)
    add_layers_parser(predictor)

    add_search_parser(sub)
    add_autogo_parser(sub)

    certs = sub.add_parser("certs", help="TLS material for a lab").add_subparsers(
        dest="certs_command", required=True, metavar="SUBCOMMAND")
    ci = certs.add_parser("init", help="create a CA, agent and controller certificates and a bearer token")
    ci.add_argument("dir", type=Path, metavar="DIR")
    ci.add_argument("--host", action="append", metavar="NAME|IP",
                    help="a name or address agents are reached by (repeatable; localhost is always included)")
    ci.add_argument("--days", type=int, default=825, help="validity (default %(default)s)")
    ci.add_argument("--force", action="store_true", help="replace existing files")
    ci.set_defaults(func=cmd_certs_init)

    d = sub.add_parser("demo", help="the main job end to end: local agents, a campaign, a predictor, a LINAS search",
                       description="Starts an ONNX Runtime agent and a replay of a public device on 127.0.0.1, "
                                   "profiles small CNNs, runs a small LatBench campaign on both, trains a latency "
                                   "predictor per device and a short LINAS search, and writes its plots.")
    d.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder (default %(default)s)")
    d.add_argument("--protocol", default="latbench", choices=["latbench", "fixed", "adaptive"],
                   help="timing protocol on the ORT agent (default %(default)s: 20 runs of 10, IQR-trimmed, robust "
                        "to a busy machine; fixed: a plain mean of 100)")
    d.add_argument("--sample", type=int, default=120,
                   help="NB-201 cells in the campaign; a quarter is held out to score the predictors, which needs "
                        "at least 20 (default %(default)s)")
    d.add_argument("--evals", type=int, default=100, help="LINAS evaluations (default %(default)s)")
    d.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    from controller.store import SchemaError, StoreOpenError, StoreUnavailable

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (StoreOpenError, SchemaError, StoreUnavailable) as exc:  # every command with --db: one line, no traceback
        return fail(args.command, exc)


if __name__ == "__main__":
    sys.exit(main())
