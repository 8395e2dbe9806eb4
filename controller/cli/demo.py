"""``make demo``: a real agent on 127.0.0.1 profiles small CNNs built from the CG IR."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from hwnas.controller.cli.common import fail
from hwnas.controller.fleet.local_agent import LocalAgent
from hwnas.controller.fleet.report import profile_table
from hwnas.controller.graph import ComputationGraph, GraphBuilder


def small_cnn(width: int, blocks: int = 2, resolution: int = 32, classes: int = 10) -> ComputationGraph:
    """A ResNet-style CNN: conv stem, ``blocks`` residual blocks, pool, classifier."""
    b = GraphBuilder((1, 3, resolution, resolution))
    x = b.conv_bn_act(b.input, width, 3)
    for _ in range(blocks):
        y = b.conv_bn_act(x, width, 3)
        y = b.conv_bn_act(y, width, 3, act=None)
        x = b.op("relu", b.op("add", x, y))
    x = b.op("flatten", b.op("global_avgpool", x))
    b.linear(x, classes)
    return b.build()


# The demo's timing on this CPU: LatBench's doubly IQR-trimmed mean over 20 runs of 10, robust to the
# spikes of a busy laptop (a plain mean of 100 inferences gave a predictor 56 % MAPE on 17 held-out cells).
DEMO_PROTOCOLS = {"latbench": {"runs": 20, "per_run": 10}, "fixed": {"count": 100}, "adaptive": {}}


def run_demo(out: Path, protocol: str = "latbench", sample: int = 120, evals: int = 100) -> dict[str, Path]:
    """The main job end to end on this machine, in a few minutes; returns the files it wrote.

    1. Two local agents: ONNX Runtime on this CPU (``local-cpu-ort``), and a replay of a public device
       (``pixel3-replay``: the packaged NB-201 table's Pixel 3 column, every record marked replayed).
    2. Small CNNs profiled on the ORT agent, then 3. a small LatBench campaign of ``sample`` NB-201 cells on
       both device keys into ``out/demo.db``: both through one ``Fleet``.
    4. A per-device latency predictor (ridge) trained from what the agents measured, scored on a quarter
       held out (enough cells for the score to mean something from about 80 cells on).
    5. A short LINAS search on the replayed device (latency vs CIFAR-10 accuracy), with its plots.
    Ends with a one-screen summary of what ran and where everything is.
    """
    from hwnas.controller.data import nb201_table_path
    from hwnas.controller.fleet import AgentEndpoint, Fleet, FleetConfig, campaign
    from hwnas.controller.fleet.client import ProfileSpec
    from hwnas.controller.learning.jobs import artifact_dir, held_out_summary, train_from_store
    from hwnas.controller.search.evaluator import Evaluator
    from hwnas.controller.search.measure import ProfileMeasurer
    from hwnas.controller.search.objectives import OBJECTIVES
    from hwnas.controller.spaces import Candidate, get_space
    from hwnas.controller.spaces.catalog import sample as sample_space
    from hwnas.controller.store import Store

    if protocol not in DEMO_PROTOCOLS:
        raise ValueError(f"--protocol must be one of {sorted(DEMO_PROTOCOLS)}, got {protocol!r}")
    out.mkdir(parents=True, exist_ok=True)
    db = out / "demo.db"
    summary: list[str] = []
    replay = ["--backend", "replay", "--table", str(nb201_table_path()), "--column", "lat_ms_pixel3"]
    with tempfile.TemporaryDirectory(prefix="hwnas-demo-") as tmp, \
            LocalAgent(Path(tmp) / "ort") as ort, LocalAgent(Path(tmp) / "replay", replay) as replayed:
        print(f"1. agents: ONNX Runtime on {ort.address} (local-cpu-ort), "
              f"a replayed Pixel 3 on {replayed.address} (pixel3-replay)")
        space = get_space("nb201")
        endpoints = [AgentEndpoint("local-cpu-ort", ort.address), AgentEndpoint("pixel3-replay", replayed.address)]
        with Store(db) as store:
            with Fleet(store, FleetConfig(endpoints=endpoints)) as fleet:
                spec = ProfileSpec(protocol=protocol, protocol_params=DEMO_PROTOCOLS[protocol])
                evaluator = Evaluator(None, [OBJECTIVES["latency"]], None, ProfileMeasurer(fleet, endpoints[0], spec),
                                      None)
                cnns = [Candidate.of_graph("demo", f"cnn-w{width}", small_cnn(width)) for width in (16, 32, 64)]
                rows = []
                for cnn, evaluation in zip(cnns, evaluator.evaluate_candidates(cnns), strict=True):
                    if evaluation is None or evaluation.outcome is None or evaluation.outcome.profiled is None:
                        raise RuntimeError(f"the ORT agent could not profile {cnn.arch}: "
                                           f"{evaluation.error if evaluation else 'not evaluated'}")
                    label = f"{cnn.arch} ({cnn.graph.macs() / 1e6:.1f} MMACs)"
                    rows.append((label, evaluation.outcome.profiled.record))
                print("2. small CNNs on the ORT agent:\n" + profile_table(rows))
                summary.append(f"profiled 3 small CNNs on this CPU ({protocol}): "
                               + ", ".join(f"{r.latency_ms:.3f} ms" for _, r in rows))
                for key, backend in (("local-cpu-ort", "onnxruntime"), ("pixel3-replay", "replay")):
                    plan = campaign.CampaignPlan("demo", [key], backend=backend, protocol=protocol,
                                                 protocol_params=DEMO_PROTOCOLS[protocol])
                    fleet.submit([space.candidate(x) for x in sample_space(space, sample, 0)], plan)
                counts = fleet.drain([ep.device_key for ep in endpoints])
                print(f"3. LatBench campaign of {sample} NB-201 cells into {db}: {campaign.summary_line(counts)}")
                summary.append(f"campaign: {campaign.summary_line(counts)}")
            for key in ("local-cpu-ort", "pixel3-replay"):
                # A quarter held out: with a demo-sized campaign a tenth is a handful of points, too few to rank.
                folder, metrics, _ = train_from_store(store, db, key, "ridge", valid_share=0.25)
                scores = held_out_summary(metrics) + busy_note(store, key)
                print(f"4. {key} latency predictor (ridge) -> {folder}: {scores}")
                summary.append(f"{key} predictor (ridge): {scores}")
            summary.append("these predictors fit the ~75 networks of a demo campaign; trained on 900, as in BRP-NAS, "
                           "the GCN reaches 95 % within ±10 % on LatBench's i7 table (`hwnas predictor bench`, "
                           "docs/benchmarks.md)")
        print(f"5. LINAS on pixel3-replay, {evals} evaluations:")
        search_out = out / "search"
        # The command a user would type, in its own process (the demo is a walk through the CLI).
        code = subprocess.run([sys.executable, "-m", "hwnas.controller.cli", "search", "--device", "pixel3-replay",
                               "--agent", replayed.address, "--backend", "replay", "--algo", "linas", "--evals",
                               str(evals), "--population", "25", "--inner-evals", "5000", "--db", str(db), "--out",
                               str(search_out), "--insecure"]).returncode
        if code != 0:
            raise RuntimeError("the demo's search failed")
    files = {name: search_out / name for name in ("pareto.png", "hypervolume.png", "pareto.csv", "measured.csv")}
    run = json.loads((search_out / "run.json").read_text())
    summary.append(f"LINAS on pixel3-replay: {run['evaluations']} evaluations, final hypervolume "
                   f"{run['hypervolume']['final']:.4f}, {run['pareto_size']} architectures on the front")
    print(demo_summary(summary, {
        "dataset": db, "predictors": artifact_dir(db, "local-cpu-ort", "svr").parent.parent,
        "search run": search_out, "plots": files["pareto.png"].parent,
    }, db))
    return files


def demo_summary(lines: list[str], outputs: dict[str, Path], db: Path) -> str:
    """The closing screen: what ran, where its outputs are, and what to try next."""
    width = max(len(name) for name in outputs)
    return "\n".join([
        "", "=" * 78, "hwnas demo: done", "=" * 78,
        *[f"- {line}" for line in lines],
        "", "outputs:", *[f"  {name:<{width}}  {path}" for name, path in outputs.items()],
        "", "next:",
        f"  hwnas dashboard --db {db}    # the fleet, campaigns and dataset in a browser (http://127.0.0.1:8080/)",
        f"  hwnas latbench status --db {db}",
        f"  hwnas latbench export --db {db} --format csv --out demo.csv",
        "  hwnas predictor bench --data demo.csv --device local-cpu-ort --target latency_ms --train 60 --valid 20",
        "  docs/dataset.md, docs/predictors.md, docs/search.md",
    ])


def add_parser(sub: argparse._SubParsersAction) -> None:
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


def busy_note(store, device_key: str) -> str:
    """How many of the key's records were taken on a busy or throttled host, as a clause ("" for none): a
    ridge at 20 % within ±10 % on a busy machine looked like a worse predictor, not a worse dataset."""
    warned = store.warned_count(device_key)
    if not warned:
        return ""
    total = sum(1 for _ in store.measurements(device_key))
    return (f"; {warned} of its {total} measurements were taken while the host was busy or throttled (their "
            "warnings_json says by what), so these figures understate the predictor")


def cmd_demo(args: argparse.Namespace) -> int:
    try:
        run_demo(args.out, args.protocol, args.sample, args.evals)
    except (RuntimeError, ValueError, OSError) as exc:
        return fail("demo", exc)
    return 0
