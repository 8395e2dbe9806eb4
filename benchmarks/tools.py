"""Fidelity of the vendor-tool backends (issue #34): each tool against the in-process backend of the same
runtime, on the same networks, interleaved so the machine's drift hits both alike.

Pairs: OpenVINO's ``benchmark_app`` (tool backend ``benchmark-app``) against the in-process ``openvino``
backend, and LiteRT's ``litert-benchmark`` (tool backend ``benchmark-model``) against the in-process
``litert`` backend. Both sides run one thread, the ``fixed`` protocol (N timed inferences, the mean), on
networks of three families (NB-201, OFA-MobileNetV3, FBNet). For every network and round the order of the
two sides alternates (A, B, then B, A). Reported per pair: the median over networks of the per-network
median latency ratio tool / in-process, and each tool job's overhead (its wall time less N times its mean
latency: process start, loading, warm-up, report) beside the in-process one.

    python -m benchmarks.tools [--per-family 2] [--rounds 3] [--count 100]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.common import machine_line
from hwnas.controller.graph.model_formats import model_format
from hwnas.controller.spaces import get_space
from hwnas.device_agent.backends import backend_class
from hwnas.device_agent.measure import MeasureOptions, measure
from hwnas.device_agent.transports.local import LocalTransport

FAMILIES = ("nb201", "ofa-mbv3", "fbnet")
BIN = Path(sys.executable).parent
# (pair label, tool backend, its executable, in-process backend, model format)
PAIRS = (("benchmark_app vs openvino", "benchmark-app", "benchmark_app", "openvino", "onnx"),
         ("litert-benchmark vs litert", "benchmark-model", "litert-benchmark", "litert", "tflite"))


def tool_path(name: str) -> str:
    found = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    if found is None:
        raise SystemExit(f"{name} is not installed (pip install -e '.[dev]')")
    return found


def networks(per_family: int, seed: int, families: tuple[str, ...] = FAMILIES) -> list[tuple[str, object]]:
    rng = np.random.default_rng(seed)
    found = []
    for family in families:
        space = get_space(family)
        found += [(family, space.to_graph(space.sample(rng))) for _ in range(per_family)]
    return found


def run(per_family: int = 2, rounds: int = 3, count: int = 100, seed: int = 0, pairs=PAIRS,
        families: tuple[str, ...] = FAMILIES) -> dict:
    options = MeasureOptions(protocol="fixed", protocol_params={"count": float(count)})
    transport = LocalTransport("benchmark-tools")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        nets = networks(per_family, seed, families)
        for label, tool_backend, executable, inproc_backend, fmt in pairs:
            tool = backend_class(tool_backend)(transport=transport, tool=tool_path(executable))
            inproc = backend_class(inproc_backend)()
            ratios, rows = [], []
            tool_overhead, inproc_overhead = [], []
            for k, (family, graph) in enumerate(nets):
                path = Path(tmp) / f"{k}.{fmt}"
                path.write_bytes(model_format(fmt).export(graph, {}))
                sides = {"tool": tool, "in-process": inproc}
                latency: dict[str, list[float]] = {"tool": [], "in-process": []}
                for r in range(rounds):
                    order = ["tool", "in-process"] if (r + k) % 2 == 0 else ["in-process", "tool"]
                    for side in order:
                        m = measure(sides[side].load(path, 1), options, None)
                        latency[side].append(m.stats.mean_ms)
                        overhead_s = (m.wall_ms - count * m.stats.mean_ms) / 1e3
                        (tool_overhead if side == "tool" else inproc_overhead).append(overhead_s)
                ratio = statistics.median(t / i for t, i in zip(latency["tool"], latency["in-process"], strict=True))
                ratios.append(ratio)
                rows.append({"family": family, "tool_ms": statistics.median(latency["tool"]),
                             "inproc_ms": statistics.median(latency["in-process"]), "ratio": ratio})
            results[label] = {"median_ratio": statistics.median(ratios), "min_ratio": min(ratios),
                              "max_ratio": max(ratios), "networks": rows,
                              "tool_overhead_s": statistics.median(tool_overhead),
                              "inproc_overhead_s": statistics.median(inproc_overhead)}
    return {"pairs": results, "per_family": per_family, "rounds": rounds, "count": count,
            "families": list(families)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-family", type=int, default=2, help="networks per family (3 families)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per network")
    parser.add_argument("--count", type=int, default=100, help="timed inferences per measurement")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    r = run(args.per_family, args.rounds, args.count, args.seed)
    print(f"machine: {machine_line()}\n")
    print("| pair | median ratio tool / in-process | range over networks | tool overhead per job (s) | "
          "in-process overhead per job (s) |\n|---|---|---|---|---|")
    for label, p in r["pairs"].items():
        print(f"| {label} | {p['median_ratio']:.3f} | {p['min_ratio']:.3f}-{p['max_ratio']:.3f} | "
              f"{p['tool_overhead_s']:.2f} | {p['inproc_overhead_s']:.2f} |")
    print()
    for label, p in r["pairs"].items():
        print(f"{label}: " + ", ".join(f"{n['family']} {n['inproc_ms']:.2f}->{n['tool_ms']:.2f} ms "
                                       f"({n['ratio']:.3f})" for n in p["networks"]))
    print(f"\n{len(r['families']) * r['per_family']} networks ({', '.join(r['families'])}), {r['rounds']} "
          f"interleaved rounds, fixed protocol, {r['count']} inferences, 1 thread")


if __name__ == "__main__":
    main()
