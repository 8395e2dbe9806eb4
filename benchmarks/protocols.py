"""Adaptive vs LatBench protocol (issue #4), interleaved so the machine's drift hits both alike.

1. Inferences: on N NB-201 models, each protocol once per model in alternating order (latbench, adaptive,
   adaptive, latbench, ...): median timed inferences per model. Target: adaptive >= 10x fewer.
2. Repeatability: on K of them, R interleaved repeats of each protocol; per model the coefficient of
   variation of each protocol's headline, then the median over models. Target: adaptive no worse.

Runs in-process with the agent's own measurement function and onnxruntime (1 thread), as an agent would.

    python -m benchmarks.protocols [--models 200] [--repeat-models 20] [--repeats 6] [--adaptive-param min_blocks=10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import machine_line
from hwnas.controller.graph.onnx_export import to_onnx_bytes
from hwnas.controller.spaces import get_space
from hwnas.device_agent.backends.onnxruntime_backend import OnnxRuntimeBackend
from hwnas.device_agent.measure import MeasureOptions, measure

PROTOCOLS = ("latbench", "adaptive")


def run(models: int, repeat_models: int, repeats: int, seed: int = 0, adaptive_params: dict | None = None) -> dict:
    space = get_space("nb201")
    rng = np.random.default_rng(seed)
    archs = [space.sample(rng) for _ in range(models)]
    backend = OnnxRuntimeBackend()
    counts: dict[str, list[int]] = {p: [] for p in PROTOCOLS}
    cvs: dict[str, list[float]] = {p: [] for p in PROTOCOLS}
    with tempfile.TemporaryDirectory() as tmp:
        for k, x in enumerate(archs):
            path = Path(tmp) / f"{k}.onnx"
            path.write_bytes(to_onnx_bytes(space.to_graph(x)))
            loaded = backend.load(path, threads=1)
            order = PROTOCOLS if k % 2 == 0 else PROTOCOLS[::-1]
            rounds = repeats if k < repeat_models else 1
            headlines: dict[str, list[float]] = {p: [] for p in PROTOCOLS}
            for r in range(rounds):
                for protocol in order if r % 2 == 0 else order[::-1]:
                    params = (adaptive_params or {}) if protocol == "adaptive" else {}
                    result = measure(loaded, MeasureOptions(protocol=protocol, protocol_params=params), None)
                    headlines[protocol].append(result.latency_ms)
                    if r == 0:
                        counts[protocol].append(result.stats.count)
            if rounds > 1:
                for protocol in PROTOCOLS:
                    values = headlines[protocol]
                    cvs[protocol].append(statistics.stdev(values) / statistics.mean(values))
    return {"median_inferences": {p: statistics.median(counts[p]) for p in PROTOCOLS},
            "median_cv": {p: statistics.median(cvs[p]) if cvs[p] else float("nan") for p in PROTOCOLS},
            "models": models, "repeat_models": min(repeat_models, models), "repeats": repeats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--repeat-models", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--adaptive-param", action="append", default=[], metavar="KEY=VALUE",
                        help="override an adaptive parameter, e.g. min_blocks=10")
    args = parser.parse_args()
    overrides = {k: float(v) for k, _, v in (p.partition("=") for p in args.adaptive_param)}
    r = run(args.models, args.repeat_models, args.repeats, adaptive_params=overrides)
    if overrides:
        print(f"adaptive parameters: {overrides}")
    print(f"machine: {machine_line()}\n")
    print("| protocol | median timed inferences per model | median CV over repeats |\n|---|---|---|")
    for p in PROTOCOLS:
        print(f"| {p} | {r['median_inferences'][p]:.0f} | {r['median_cv'][p] * 100:.2f}% |")
    ratio = r["median_inferences"]["latbench"] / r["median_inferences"]["adaptive"]
    print(f"\n{r['models']} models; CV on {r['repeat_models']} of them x {r['repeats']} interleaved repeats; "
          f"latbench uses {ratio:.1f}x the inferences of adaptive")


if __name__ == "__main__":
    main()
