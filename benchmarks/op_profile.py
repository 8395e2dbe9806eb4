"""What a per-op profile and an output check cost (issue #37): the latency they report beside, and the device
time they take.

Both run after the timed window, so the latency should not move: the per-op profile on a session of its
own (a second session and 20 more inferences), the output check as one more inference on the check's seeded
input. For NB-201 samples, each runtime that has the detail (a profiler: onnxruntime, OpenVINO, LiteRT;
outputs: onnxruntime, OpenVINO and PyTorch) is measured with and without it in alternation (A, B, A, B...:
the machine drifts by several percent within minutes), in-process with the agent's own backends and
measurement function, by the ``fixed`` protocol.

    python -m benchmarks.op_profile [--models 10] [--count 300] [--detail op_profile|output_check]
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

RUNTIMES = {"op_profile": ("onnxruntime", "openvino", "litert"), "output_check": ("onnxruntime", "openvino", "torch")}
FORMATS = {"litert": "tflite"}  # the file each runtime runs; onnx where not named


def run(models: int, count: int, seed: int = 0, detail: str = "op_profile") -> dict[str, dict[str, float]]:
    """Per runtime: the median per-model ratio (with / without ``detail``, a ``MeasureOptions`` flag) of
    latency and of wall time."""
    space = get_space("nb201")
    rng = np.random.default_rng(seed)
    backends = {name: backend_class(name)() for name in RUNTIMES[detail]}
    ratios: dict[str, dict[str, list[float]]] = {name: {"latency": [], "wall": []} for name in backends}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(models):
            graph = space.to_graph(space.sample(rng))
            for name in backends:
                wire = FORMATS.get(name, "onnx")
                path = Path(tmp) / f"{k}.{wire}"
                if not path.exists():
                    path.write_bytes(model_format(wire).export(graph, {}))
                figures = {}
                for profiled in ((False, True) if k % 2 == 0 else (True, False)):  # alternate which goes first
                    loaded = backends[name].load(path, threads=1)
                    loaded.onnx_path = path if wire == "onnx" else None  # as the agent sets it
                    options = MeasureOptions(protocol="fixed", protocol_params={"count": float(count)},
                                             **{detail: profiled})
                    started = time.perf_counter()
                    result = measure(loaded, options, None)
                    figures[profiled] = (result.latency_ms, time.perf_counter() - started)
                ratios[name]["latency"].append(figures[True][0] / figures[False][0])
                ratios[name]["wall"].append(figures[True][1] / figures[False][1])
    return {name: {kind: statistics.median(values) for kind, values in r.items()} for name, r in ratios.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--count", type=int, default=300, help="timed inferences per measurement")
    parser.add_argument("--detail", choices=sorted(RUNTIMES), default="op_profile")
    args = parser.parse_args()
    r = run(args.models, args.count, detail=args.detail)
    print(f"machine: {machine_line()}\n")
    print(f"| runtime | latency with / without {args.detail} | device time with / without |\n|---|---|---|")
    for name, figures in r.items():
        print(f"| {name} | {figures['latency']:.3f} | {figures['wall']:.2f} |")
    print(f"\n{args.models} NB-201 models x {args.count} inferences, one thread, medians of per-model ratios")


if __name__ == "__main__":
    main()
