"""One NB-201 sample on every CPU runtime of issue #8, interleaved so the machine's drift hits all alike.

For each model: export ONNX, convert to TFLite fp32 and int8 (timing each conversion), then measure it
with onnxruntime, LiteRT fp32, LiteRT int8 and PyTorch eager, in an order that rotates from model to
model, each by the ``fixed`` protocol (N inferences, 1 thread), in-process with the agent's own backends
and measurement function. Reports the median latency per runtime, the median per-model ratio to
onnxruntime, and the median conversion times.

    python -m benchmarks.runtimes [--models 20] [--count 300]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine_line
from controller.graph.model_formats import model_format
from controller.spaces import get_space
from device_agent.backends import backend_class
from device_agent.measure import MeasureOptions, measure

# (label, backend, model format)
RUNTIMES = (("onnxruntime", "onnxruntime", "onnx"), ("litert fp32", "litert", "tflite"),
            ("litert int8", "litert", "tflite-int8"), ("pytorch eager", "torch", "onnx"))


def run(models: int, count: int, seed: int = 0, runtimes=RUNTIMES) -> dict:
    space = get_space("nb201")
    rng = np.random.default_rng(seed)
    backends = {name: backend_class(name)() for name in {b for _, b, _ in runtimes}}
    latency: dict[str, list[float]] = {label: [] for label, _, _ in runtimes}
    formats = sorted({fmt for _, _, fmt in runtimes})
    convert_s: dict[str, list[float]] = {fmt: [] for fmt in formats if fmt != "onnx"}
    options = MeasureOptions(protocol="fixed", protocol_params={"count": float(count)})
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(models):
            graph = space.to_graph(space.sample(rng))
            paths = {}
            for fmt in formats:
                t0 = time.perf_counter()
                data = model_format(fmt).export(graph, {})
                if fmt in convert_s:
                    convert_s[fmt].append(time.perf_counter() - t0)
                paths[fmt] = Path(tmp) / f"{k}.{fmt}"
                paths[fmt].write_bytes(data)
            shift = k % len(runtimes)
            for label, backend, fmt in runtimes[shift:] + runtimes[:shift]:
                loaded = backends[backend].load(paths[fmt], threads=1)
                latency[label].append(measure(loaded, options, None).latency_ms)
    ratios = {label: statistics.median(v / o for v, o in zip(values, latency["onnxruntime"], strict=True))
              for label, values in latency.items()}
    return {"median_ms": {label: statistics.median(v) for label, v in latency.items()}, "ratio_to_ort": ratios,
            "median_convert_s": {fmt: statistics.median(v) for fmt, v in convert_s.items()}, "models": models,
            "count": count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--count", type=int, default=300, help="timed inferences per model and runtime")
    args = parser.parse_args()
    r = run(args.models, args.count)
    print(f"machine: {machine_line()}\n")
    print("| runtime | median latency (ms) | median ratio to onnxruntime |\n|---|---|---|")
    for label, _, _ in RUNTIMES:
        print(f"| {label} | {r['median_ms'][label]:.3f} | {r['ratio_to_ort'][label]:.2f} |")
    conv = r["median_convert_s"]
    print(f"\n{r['models']} NB-201 models x {r['count']} inferences, 1 thread, runtimes interleaved; median "
          f"conversion: TFLite fp32 {conv['tflite']:.1f} s, int8 {conv['tflite-int8']:.1f} s per model")


if __name__ == "__main__":
    main()
