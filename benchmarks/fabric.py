"""Fabric benchmarks (issue #2): overhead of measuring through an agent, repeatability, round trip.

1. overhead ratio: for each small CNN, the `latbench` headline reported by an agent over loopback gRPC
   divided by the same protocol run in-process on the same model; the two are interleaved per model in
   `--rounds` ABBA rounds (ABBA, BAAB alternating between models) so machine drift hits both equally, and
   each side's median over its runs is compared. Target: median ratio within 1.00 +- 0.03.
2. repeatability: coefficient of variation of the `latbench` headline over 5 profiles of the same model.
3. round trip: Profile wall time for a cached, loaded model minus the agent's own measurement wall time
   and queue wait (fixed protocol, 1 inference, no warm-up). Target: < 5 ms.

    python -m benchmarks.fabric [--models 20] [--rounds 3] [--repeats 5] [--round-trips 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from benchmarks.common import machine_line
from hwnas.controller.cli.demo import small_cnn
from hwnas.controller.fleet.client import AgentClient
from hwnas.controller.fleet.local_agent import LocalAgent
from hwnas.controller.graph.onnx_export import to_onnx_bytes
from hwnas.device_agent.backends.onnxruntime_backend import OnnxRuntimeBackend
from hwnas.device_agent.measure import MeasureOptions, measure

THREADS = 1  # one intra-op thread on both sides: the comparison is about the fabric, not the pool


def model_zoo(count: int) -> list[tuple[str, bytes]]:
    """Small CNNs of varied width, depth and resolution."""
    shapes = [(w, b, r) for r in (32, 64) for b in (1, 2, 3) for w in (8, 16, 24, 32, 48)]
    return [(f"w{w}-b{b}-r{r}", to_onnx_bytes(small_cnn(w, blocks=b, resolution=r))) for w, b, r in shapes[:count]]


def overhead_and_repeatability(client: AgentClient, zoo, params: dict, rounds: int, repeats: int,
                               workdir: Path) -> dict:
    backend = OnnxRuntimeBackend()
    options = MeasureOptions(protocol="latbench", protocol_params=params)
    ratios, rows = [], []
    for k, (name, model) in enumerate(zoo):
        sha, _ = client.ensure_model(model)
        path = workdir / f"{sha}.onnx"
        path.write_bytes(model)
        loaded = backend.load(path, THREADS)

        def local(loaded=loaded) -> float:
            return measure(loaded, options, None).latency_ms

        def remote(sha=sha) -> float:
            return client.profile(sha, protocol="latbench", protocol_params=params, threads=THREADS).latency_ms

        order = (local, remote, remote, local) if k % 2 == 0 else (remote, local, local, remote)
        got: dict[str, list[float]] = {"local": [], "remote": []}
        for _ in range(rounds):
            for fn in order:
                got[fn.__name__].append(fn())
        local_ms, remote_ms = statistics.median(got["local"]), statistics.median(got["remote"])
        ratios.append(remote_ms / local_ms)
        rows.append((name, local_ms, remote_ms, remote_ms / local_ms))
    repeat_rows = []
    for name, model in zoo[:: max(1, len(zoo) // 3)][:3]:
        sha, _ = client.ensure_model(model)
        values = [client.profile(sha, protocol="latbench", protocol_params=params, threads=THREADS).latency_ms
                  for _ in range(repeats)]
        repeat_rows.append((name, statistics.mean(values), statistics.stdev(values) / statistics.mean(values)))
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    return {"rows": rows, "median_ratio": statistics.median(ratios), "min_ratio": min(ratios),
            "max_ratio": max(ratios), "q1_ratio": quartiles[0], "q3_ratio": quartiles[2],
            "repeat_rows": repeat_rows}


def round_trip(client: AgentClient, model: bytes, calls: int) -> dict:
    sha, _ = client.ensure_model(model)
    overheads = []
    for _ in range(calls + 5):
        record = client.profile(sha, protocol="fixed", protocol_params={"count": 1}, warmup_runs=0, threads=THREADS)
        overheads.append(record.overhead_ms)
    overheads = overheads[5:]  # the first calls load the session
    overheads.sort()
    return {"median_ms": statistics.median(overheads), "p90_ms": overheads[int(0.9 * (len(overheads) - 1))]}


def run(models: int, repeats: int, round_trips: int, params: dict | None = None, rounds: int = 3) -> dict:
    params = params or {}
    zoo = model_zoo(models)
    with tempfile.TemporaryDirectory(prefix="hwnas-bench-") as tmp, LocalAgent(Path(tmp) / "cache") as agent, \
            AgentClient(agent.address) as client:
        client.wait_ready()
        result = overhead_and_repeatability(client, zoo, params, rounds, repeats, Path(tmp))
        result["round_trip"] = round_trip(client, zoo[0][1], round_trips)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="ABBA rounds per model")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--round-trips", type=int, default=200)
    args = parser.parse_args()
    result = run(args.models, args.repeats, args.round_trips, rounds=args.rounds)
    print(f"machine: {machine_line()}")
    print(f"\n{args.rounds} ABBA rounds per model; medians per side\n")
    print("| model | in-process latbench ms | agent latbench ms | ratio |\n|---|---|---|---|")
    for name, local, remote, ratio in result["rows"]:
        print(f"| {name} | {local:.4f} | {remote:.4f} | {ratio:.4f} |")
    print(f"\noverhead ratio over {len(result['rows'])} models: median {result['median_ratio']:.4f} "
          f"(IQR {result['q1_ratio']:.4f}-{result['q3_ratio']:.4f}, min {result['min_ratio']:.4f}, "
          f"max {result['max_ratio']:.4f})")
    print(f"\n| model | mean latbench ms over {args.repeats} profiles | CV |\n|---|---|---|")
    for name, mean, cv in result["repeat_rows"]:
        print(f"| {name} | {mean:.4f} | {cv * 100:.2f}% |")
    rt = result["round_trip"]
    print(f"\nProfile round trip minus measurement, {args.round_trips} calls: median {rt['median_ms']:.2f} ms, "
          f"p90 {rt['p90_ms']:.2f} ms")


if __name__ == "__main__":
    main()
