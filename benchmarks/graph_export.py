"""CG build + ONNX export time per space (issue #3): median over random samples.

Targets: NB-201 cell <= 20 ms, OFA-MBv3 subnet <= 100 ms. Three stages are timed per sample, in turn:
``to_graph`` (encoding -> CG), ``to_onnx`` (CG -> ModelProto with random weights), and serialization
to bytes (what goes on the wire; it scales with the weights, ~28 MB for an OFA-MBv3 subnet).

    python -m benchmarks.graph_export [--samples 200]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from benchmarks.common import machine_line
from hwnas.controller.graph.onnx_export import to_onnx
from hwnas.controller.spaces import get_space


def run(samples: int, spaces: tuple[str, ...] = ("nb201", "ofa-mbv3", "ofa-resnet50")) -> dict[str, dict]:
    rng = np.random.default_rng(0)
    prepared = {name: get_space(name) for name in spaces}
    archs = {name: [space.sample(rng) for _ in range(samples)] for name, space in prepared.items()}
    timings: dict[str, dict[str, list[float]]] = {n: {"graph": [], "onnx": [], "bytes": []} for n in spaces}
    for name, space in prepared.items():  # warm caches (NB-201 table, weight pool)
        to_onnx(space.to_graph(archs[name][0])).SerializeToString()
    for k in range(samples):  # spaces interleaved sample by sample, so drift hits all alike
        for name, space in prepared.items():
            t0 = time.perf_counter()
            graph = space.to_graph(archs[name][k])
            t1 = time.perf_counter()
            model = to_onnx(graph)
            t2 = time.perf_counter()
            model.SerializeToString()
            t3 = time.perf_counter()
            timings[name]["graph"].append((t1 - t0) * 1e3)
            timings[name]["onnx"].append((t2 - t1) * 1e3)
            timings[name]["bytes"].append((t3 - t2) * 1e3)
    return {name: {stage: statistics.median(values) for stage, values in stages.items()}
            for name, stages in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    result = run(args.samples)
    print(f"machine: {machine_line()}\n")
    print(f"median of {args.samples} samples per space\n")
    print("| space | to_graph ms | to_onnx ms | build + export ms | serialize ms | total ms |")
    print("|---|---|---|---|---|---|")
    for name, r in result.items():
        print(f"| {name} | {r['graph']:.1f} | {r['onnx']:.1f} | {r['graph'] + r['onnx']:.1f} | {r['bytes']:.1f} | "
              f"{r['graph'] + r['onnx'] + r['bytes']:.1f} |")


if __name__ == "__main__":
    main()
