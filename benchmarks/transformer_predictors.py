"""Latency predictors on the elastic transformer space (issue #38) at 50, 200 and 1,000 measured networks.

Distinct random networks of the ``transformer`` space (at ``--sequence`` tokens) are measured in-process
with the agent's onnxruntime backend and measurement function (``fixed`` protocol, one thread; the
measurements are kept in ``--cache`` so a rerun fits without measuring again). Each predictor kind then fits
on 50, 200 and 1,000 of them (a tenth more to validate) and is scored on the networks left over, over three
seeds: the share within +-10 % (nn-Meter's, BRP-NAS's definition), MAPE and Kendall's tau.

    python -m benchmarks.transformer_predictors [--networks 1300] [--sequence 32] [--count 20]
        [--kinds ridge,svr,flops,gcn-cg,kgnn] [--cache runs/transformer-latency.csv]
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine_line
from hwnas.controller.graph.onnx_export import to_onnx_bytes
from hwnas.controller.spaces import get_space

SIZES = (50, 200, 1000)


def measure_networks(count: int, sequence: int, inferences: int, cache: Path, seed: int = 0,
                     progress: bool = True) -> list[tuple[list[int], float]]:
    """(encoding, mean latency in ms) of ``count`` distinct networks, from ``cache`` where measured before."""
    from hwnas.device_agent.backends import backend_class
    from hwnas.device_agent.measure import MeasureOptions, measure

    space = get_space("transformer", sequence=sequence)
    done: dict[tuple[int, ...], float] = {}
    if cache.exists():
        with cache.open() as f:
            done = {tuple(int(v) for v in row["encoding"].split()): float(row["latency_ms"])
                    for row in csv.DictReader(f) if int(row["sequence"]) == sequence}
    rng = np.random.default_rng(seed)
    wanted: list[tuple[int, ...]] = list(done)[:count]
    while len(wanted) < count:
        key = space.network_key(space.sample(rng))
        if key not in wanted:
            wanted.append(key)
    backend = backend_class("onnxruntime")()
    cache.parent.mkdir(parents=True, exist_ok=True)
    new = not cache.exists()
    started = time.perf_counter()
    with cache.open("a", newline="") as f, tempfile.TemporaryDirectory() as tmp:
        writer = csv.writer(f)
        if new:
            writer.writerow(["encoding", "sequence", "latency_ms"])
        for k, key in enumerate(wanted):
            if key in done:
                continue
            path = Path(tmp) / "model.onnx"
            path.write_bytes(to_onnx_bytes(space.to_graph(list(key))))
            loaded = backend.load(path, threads=1)
            loaded.onnx_path = path
            result = measure(loaded, MeasureOptions(protocol="fixed", protocol_params={"count": float(inferences)}),
                             None)
            done[key] = round(result.latency_ms, 6)  # as the cache keeps it: a rerun fits on the same values
            writer.writerow([" ".join(map(str, key)), sequence, f"{done[key]:.6f}"])
            f.flush()
            if progress and k % 50 == 0:
                print(f"  measured {k + 1}/{count} ({time.perf_counter() - started:.0f} s)", flush=True)
    return [(list(key), done[key]) for key in wanted]


def run(networks: int, sequence: int, inferences: int, kinds: list[str], cache: Path, seeds: int = 3,
        sizes: tuple[int, ...] = SIZES) -> dict[int, dict[str, dict[str, tuple[float, float]]]]:
    """{train size: {kind: {metric: (mean, std over seeds)}}}."""
    from hwnas.controller.learning.data import table_samples
    from hwnas.predictors import predictor_class
    from hwnas.predictors.evaluate import bench, summarise

    measured = measure_networks(networks, sequence, inferences, cache)
    space = get_space("transformer", sequence=sequence)
    encodings = [x for x, _ in measured]
    samples = table_samples(space, encodings, [y for _, y in measured], flops="flops" in kinds,
                            graphs=any("graphs" in predictor_class(kind).needs for kind in kinds))
    out = {}
    for size in sizes:
        valid = max(10, size // 10)
        if size + valid >= len(encodings):
            raise ValueError(f"{size} training networks need more than {len(encodings)} measured (--networks)")
        out[size] = summarise(bench(samples, kinds, range(seeds), size, valid))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", type=int, default=1300)
    parser.add_argument("--sequence", type=int, default=32)
    parser.add_argument("--count", type=int, default=20, help="timed inferences per network")
    parser.add_argument("--kinds", default="ridge,svr,flops,gcn-cg,kgnn")
    parser.add_argument("--cache", type=Path, default=Path("runs/transformer-latency.csv"))
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    kinds = args.kinds.split(",")
    results = run(args.networks, args.sequence, args.count, kinds, args.cache, args.seeds)
    print(f"machine: {machine_line()}\n")
    print("| predictor | " + " | ".join(f"{n} nets: within ±10 % / MAPE / tau" for n in results) + " |")
    print("|---|" + "---|" * len(results))
    for kind in kinds:
        cells = []
        for summary in results.values():
            m = summary[kind]
            cells.append(f"{100 * m['nnmeter_within_10pct'][0]:.1f} % / {100 * m['mape'][0]:.1f} % / "
                         f"{m['kendall_tau'][0]:.3f}")
        print(f"| {kind} | " + " | ".join(cells) + " |")
    print(f"\n{args.networks} networks at {args.sequence} tokens, {args.count} timed inferences each, one thread; "
          f"{args.seeds} seeds; the networks not trained or validated on are the test set")


if __name__ == "__main__":
    main()
