"""The layer-wise predictor against the others on a device measured live (issues #5 and #37, BRP-NAS §3.1).

The packaged NB-201 table has end-to-end latencies only, so the layer-wise predictor (the sum of the
device's own per-layer latencies, one scale factor) is measured here on this machine: a real agent process
times a random sample of NB-201 networks with their per-op profiles (``--op-profile``), then every distinct
layer of them as a model of its own, through the same commands a lab uses (``hwnas latbench build``,
``hwnas predictor layers``). The layer sum is taken three ways, each fitted on the same random splits:

- ``isolated``: each layer timed as its own model (``hwnas predictor layers``);
- ``op-profiles``: each layer's median time inside the training networks' op profiles;
- ``kernels``: nn-Meter's kernel view, fitted to the training networks' op profiles.

The op-profile layer sums learn from the training networks' profiles only: a test network's own profile is
never read. The device time each way costs is read from the records: the layer jobs' own, against the
op profiles' share of the network jobs (``op_profile_ms``).

    python -m benchmarks.layerwise [--networks 500] [--train 200] [--valid 30] [--seeds 5] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.common import machine_line

KEY = "this-cpu"
LAYER_SOURCES = ("isolated", "op-profiles", "kernels")


def measure(db: Path, cache: Path, networks: int, count: int, backend: str = "onnxruntime") -> tuple[float, float]:
    """Networks (with their op profiles), then their layers, measured by one agent process; wall seconds of
    each step."""
    from hwnas.controller.cli.main import main
    from hwnas.controller.fleet.local_agent import LocalAgent

    job = ["--protocol", "fixed", "--param", f"count={count}", "--insecure", "--backend", backend]
    with LocalAgent(cache) as agent:
        agent_flag = ["--agent", f"{KEY}={agent.address}"]
        t0 = time.perf_counter()
        if main(["latbench", "build", "--space", "nb201", "--devices", KEY, "--sample", str(networks), "--seed",
                 "0", "--db", str(db), "--quiet", "--no-golden", "--op-profile", *job, *agent_flag]) != 0:
            raise SystemExit("the network campaign failed")
        t1 = time.perf_counter()
        if main(["predictor", "layers", "--db", str(db), "--device", KEY, "--quiet",
                 "--no-golden", *job, *agent_flag]) != 0:
            raise SystemExit("measuring the layers failed")
        return t1 - t0, time.perf_counter() - t1


def device_seconds(db: Path) -> dict[str, float]:
    """Device time (agent-side, start to finish of each job) of the networks, of their op profiles within
    them, and of the isolated layers."""
    from hwnas.controller.learning.layer_latency import LAYER_SPACE
    from hwnas.controller.store import Store

    out = {"networks_s": 0.0, "op_profiles_s": 0.0, "layers_s": 0.0, "layers": 0.0, "networks": 0.0}
    with Store(db) as store:
        for r in store.measurements(KEY):
            seconds = (r["finished_unix_ns"] - r["started_unix_ns"]) / 1e9
            if r["space"] == LAYER_SPACE:
                out["layers_s"] += seconds
                out["layers"] += 1
            else:
                out["networks_s"] += seconds
                out["networks"] += 1
                out["op_profiles_s"] += json.loads(r["protocol_details_json"]).get("op_profile_ms", 0.0) / 1e3
    return out


def bench(db: Path, kinds: list[str], seeds: int, n_train: int, n_valid: int, configs: dict | None = None,
          sources: tuple[str, ...] = LAYER_SOURCES) -> tuple[list, int]:
    """Each predictor's results on random splits of the measured networks (the layer-wise one once per layer
    source, named ``layerwise[SOURCE]``), and how many networks there are."""
    from hwnas.controller.learning.jobs import key_rows, rows_samples, with_layer_sums
    from hwnas.controller.store import Store
    from hwnas.predictors.evaluate import bench as bench_kinds
    from hwnas.predictors.evaluate import split

    others = [kind for kind in kinds if kind != "layerwise"]
    results = []
    with Store(db) as store:
        space, rows = key_rows(store, KEY)
        samples = rows_samples(space, rows)
        for seed in range(seeds):
            if "layerwise" in kinds:
                train = split(len(samples), n_train, n_valid, seed).train
                for source in sources:
                    summed = with_layer_sums(samples, store, KEY, space, rows, source, learn_from=train)
                    results += [replace(r, kind=f"layerwise[{source}]")
                                for r in bench_kinds(summed, ["layerwise"], [seed], n_train, n_valid, configs)]
            results += bench_kinds(samples, others, [seed], n_train, n_valid, configs)
    return results, len(samples)


def main() -> None:
    from hwnas.controller.learning.jobs import bench_table
    from hwnas.controller.reporting.tables import text_table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", type=int, default=500, help="NB-201 cells sampled (twins collapse)")
    parser.add_argument("--train", type=int, default=200)
    parser.add_argument("--valid", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--count", type=int, default=200, help="timed inferences per model (fixed protocol)")
    parser.add_argument("--backend", default="onnxruntime", help="the agent's backend (one with an op profiler)")
    parser.add_argument("--kinds", default="layerwise,flops,ridge,gcn")
    parser.add_argument("--work", type=Path, default=None, help="keep the dataset here (default: a temp folder)")
    args = parser.parse_args()
    print(f"machine: {machine_line()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="hwnas-layerwise-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        db = work / "layerwise.db"
        if not db.exists():
            networks_s, layers_s = measure(db, work / "cache", args.networks, args.count, args.backend)
            print(f"measured {args.networks} NB-201 networks with op profiles in {networks_s:.0f} s and their "
                  f"layers in {layers_s:.0f} s ({args.backend}, fixed protocol, {args.count} inferences)", flush=True)
        spent = device_seconds(db)
        print(f"device time: {spent['networks']:.0f} networks {spent['networks_s']:.1f} s, of which op profiles "
              f"{spent['op_profiles_s']:.1f} s; {spent['layers']:.0f} isolated layers {spent['layers_s']:.1f} s")
        results, n = bench(db, args.kinds.split(","), args.seeds, args.train, args.valid)
    print(f"{n} distinct networks (cells that prune to the same network are one): {args.train} train / "
          f"{args.valid} validation / {n - args.train - args.valid} test, {args.seeds} seeds")
    print(text_table(bench_table(results)))


if __name__ == "__main__":
    main()
