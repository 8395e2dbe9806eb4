"""The layer-wise predictor against the others on a device measured live (issue #5, BRP-NAS §3.1).

The packaged NB-201 table has end-to-end latencies only, so the layer-wise predictor (the sum of the
device's own per-layer latencies, one scale factor) is measured here on this machine: a real ONNX Runtime
agent process times a random sample of NB-201 networks and every distinct layer of them, through the
same commands a lab uses (``hwnas latbench build``, ``hwnas predictor layers``). Then every predictor is
fitted on random splits of the measured networks.

    python -m benchmarks.layerwise [--networks 300] [--train 200] [--valid 30] [--seeds 5] [--work DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine_line

KEY = "this-cpu-ort"


def measure(db: Path, cache: Path, networks: int, count: int) -> tuple[float, float]:
    """Networks, then their layers, measured by one agent process; wall seconds of each step."""
    from controller.cli.main import main
    from controller.fleet.local_agent import LocalAgent

    job = ["--protocol", "fixed", "--param", f"count={count}", "--insecure"]
    with LocalAgent(cache) as agent:
        agent_flag = ["--agent", f"{KEY}={agent.address}"]
        t0 = time.perf_counter()
        if main(["latbench", "build", "--space", "nb201", "--devices", KEY, "--sample", str(networks), "--seed",
                 "0", "--db", str(db), "--quiet", "--no-golden", *job, *agent_flag]) != 0:
            raise SystemExit("the network campaign failed")
        t1 = time.perf_counter()
        if main(["predictor", "layers", "--db", str(db), "--device", KEY, "--quiet",
                 "--no-golden", *job, *agent_flag]) != 0:
            raise SystemExit("measuring the layers failed")
        return t1 - t0, time.perf_counter() - t1


def bench(db: Path, kinds: list[str], seeds: int, n_train: int, n_valid: int,
          configs: dict | None = None) -> tuple[list, int]:
    """Each predictor's results on random splits of the measured networks, and how many networks there are."""
    from controller.learning.jobs import samples_from_store
    from controller.store import Store
    from predictors.evaluate import bench as bench_kinds

    with Store(db) as store:
        _, samples = samples_from_store(store, KEY, layer_sum=True)
    return bench_kinds(samples, kinds, range(seeds), n_train, n_valid, configs), len(samples)


def main() -> None:
    from controller.learning.jobs import bench_table
    from controller.reporting.tables import text_table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", type=int, default=500, help="NB-201 cells sampled (twins collapse)")
    parser.add_argument("--train", type=int, default=200)
    parser.add_argument("--valid", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--count", type=int, default=200, help="timed inferences per model (fixed protocol)")
    parser.add_argument("--kinds", default="layerwise,flops,ridge,svr,gcn")
    parser.add_argument("--work", type=Path, default=None, help="keep the dataset here (default: a temp folder)")
    args = parser.parse_args()
    print(f"machine: {machine_line()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="hwnas-layerwise-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        db = work / "layerwise.db"
        networks_s, layers_s = measure(db, work / "cache", args.networks, args.count)
        print(f"measured {args.networks} NB-201 networks in {networks_s:.0f} s and their layers in {layers_s:.0f} s "
              f"(fixed protocol, {args.count} inferences, the agent's default threads)", flush=True)
        results, n = bench(db, args.kinds.split(","), args.seeds, args.train, args.valid)
    print(f"{n} distinct networks (cells that prune to the same network are one): {args.train} train / "
          f"{args.valid} validation / {n - args.train - args.valid} test, {args.seeds} seeds")
    print(text_table(bench_table(results)))


if __name__ == "__main__":
    main()
