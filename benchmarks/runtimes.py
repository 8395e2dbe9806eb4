"""One NB-201 sample on every CPU runtime (issues #8 and #23), interleaved so the machine's drift hits all alike.

For each model: export ONNX, convert to TFLite fp32 and int8 (timing each conversion), then measure it
with onnxruntime, LiteRT fp32, LiteRT int8, PyTorch eager and OpenVINO (the device's default precision, and
f32), at every thread setting (``--threads 1,0``: one thread, and 0 = each runtime's own default, all cores),
in an order that rotates from model to model, each by the ``fixed`` protocol (N inferences), in-process with
the agent's own backends and measurement function. Reports the median latency per runtime and thread
setting, the median per-model ratio to onnxruntime at the same setting, and the median conversion times.

    python -m benchmarks.runtimes [--models 20] [--count 300] [--threads 1,0]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine_line
from hwnas.controller.graph.model_formats import model_format
from hwnas.controller.spaces import get_space
from hwnas.device_agent.backends import backend_class
from hwnas.device_agent.measure import MeasureOptions, measure

# (label, backend, backend options, model format)
RUNTIMES = (("onnxruntime", "onnxruntime", {}, "onnx"), ("litert fp32", "litert", {}, "tflite"),
            ("litert int8", "litert", {}, "tflite-int8"), ("pytorch eager", "torch", {}, "onnx"),
            ("openvino cpu", "openvino", {}, "onnx"), ("openvino cpu f32", "openvino", {"precision": "f32"}, "onnx"))


def run(models: int, count: int, seed: int = 0, runtimes=RUNTIMES, threads: tuple[int, ...] = (1,)) -> dict:
    """Results keyed by ``"label"`` (one thread setting) or ``"label @ N threads"``."""
    space = get_space("nb201")
    rng = np.random.default_rng(seed)
    backends = {label: backend_class(name)(**options) for label, name, options, _ in runtimes}
    cells = [(label, fmt, n) for n in threads for label, _, _, fmt in runtimes]

    def key(label: str, n: int) -> str:
        return label if len(threads) == 1 else f"{label} @ {n or 'all'} threads"

    latency: dict[str, list[float]] = {key(label, n): [] for label, _, n in cells}
    formats = sorted({fmt for _, _, _, fmt in runtimes})
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
            shift = k % len(cells)
            for label, fmt, n in cells[shift:] + cells[:shift]:
                loaded = backends[label].load(paths[fmt], threads=n)
                latency[key(label, n)].append(measure(loaded, options, None).latency_ms)
    ratios = {key(label, n): statistics.median(v / o for v, o in zip(latency[key(label, n)],
                                                                    latency[key("onnxruntime", n)], strict=True))
              for label, _, n in cells}
    return {"median_ms": {label: statistics.median(v) for label, v in latency.items()}, "ratio_to_ort": ratios,
            "median_convert_s": {fmt: statistics.median(v) for fmt, v in convert_s.items()}, "models": models,
            "count": count, "threads": list(threads)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--count", type=int, default=300, help="timed inferences per model and runtime")
    parser.add_argument("--threads", default="1", help="thread settings, comma-separated; 0: the runtime's default")
    args = parser.parse_args()
    r = run(args.models, args.count, threads=tuple(int(t) for t in args.threads.split(",")))
    print(f"machine: {machine_line()}\n")
    print("| runtime | median latency (ms) | median ratio to onnxruntime |\n|---|---|---|")
    for label in r["median_ms"]:
        print(f"| {label} | {r['median_ms'][label]:.3f} | {r['ratio_to_ort'][label]:.2f} |")
    conv = r["median_convert_s"]
    print(f"\n{r['models']} NB-201 models x {r['count']} inferences, threads {args.threads}, runtimes interleaved; "
          f"median conversion: TFLite fp32 {conv['tflite']:.1f} s, int8 {conv['tflite-int8']:.1f} s per model")


if __name__ == "__main__":
    main()
