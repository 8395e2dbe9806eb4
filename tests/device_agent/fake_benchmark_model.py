"""A FAKE of LiteRT's C++ ``benchmark_model`` (tensorflow/lite/tools/benchmark): no build of it exists on
this machine, and a phone or board would run that binary.

It keeps the binary's contract for what hwnas uses: its flags (``--graph``, ``--num_runs``,
``--warmup_runs``, ``--num_threads``, ``--input_layer``/``--input_layer_shape``/``--input_layer_value_files``,
``--output_filepath``), inputs matched by position and a file of the wrong size fatal, the last inference's
outputs written raw and back to back, and its log lines (``count=... avg=...``, ``Inference timings in us``,
the memory line). The model runs for real in LiteRT's interpreter, so the outputs are the runtime's own.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter


def flags(argv: list[str]) -> dict[str, str]:
    found = {}
    for arg in argv:
        name, _, value = arg.removeprefix("--").partition("=")
        found[name] = value
    return found


def main(argv: list[str]) -> int:
    given = flags(argv)
    interpreter = Interpreter(model_path=given["graph"], num_threads=int(given.get("num_threads", "1")))
    print(f"INFO: Loaded model {given['graph']}")
    t0 = time.perf_counter()
    interpreter.allocate_tensors()
    init_us = (time.perf_counter() - t0) * 1e6
    details = interpreter.get_input_details()
    names = [n for n in given.get("input_layer", "").split(",") if n]
    files = dict(item.split(":", 1) for item in given.get("input_layer_value_files", "").split(",") if item)
    rng = np.random.default_rng(0)
    for k, detail in enumerate(details):
        if k < len(names) and names[k] != detail["name"]:
            print(f"WARN: Tensor # {detail['index']} is named {detail['name']} but flags call it {names[k]}")
        size = int(np.prod(detail["shape"])) * np.dtype(detail["dtype"]).itemsize
        path = files.get(names[k]) if k < len(names) else None
        if path is None:
            value = rng.uniform(-1, 1, detail["shape"]).astype(detail["dtype"])
        else:
            data = open(path, "rb").read()
            if len(data) != size:
                print(f"ERROR: The size of {path} is {len(data)} bytes. It should be {size} bytes.")
                return 1
            value = np.frombuffer(data, dtype=detail["dtype"]).reshape(detail["shape"])
        interpreter.set_tensor(detail["index"], value)

    def timed(count: int) -> list[float]:
        times = []
        for _ in range(count):
            start = time.perf_counter()
            interpreter.invoke()
            times.append((time.perf_counter() - start) * 1e6)
        return times

    warm = timed(max(1, int(given.get("warmup_runs", "1"))))
    print(f"INFO: count={len(warm)} curr={warm[-1]:.0f}\n")
    runs = timed(int(given.get("num_runs", "50")))
    print(f"INFO: count={len(runs)} first={runs[0]:.0f} curr={runs[-1]:.0f} min={min(runs):.0f} max={max(runs):.0f} "
          f"avg={np.mean(runs):g} std={np.std(runs):.0f}\n")
    print(f"INFO: Inference timings in us: Init: {init_us:.0f}, First inference: {warm[0]:.0f}, Warmup (avg): "
          f"{np.mean(warm):g}, Inference (avg): {np.mean(runs):g}")
    print("INFO: Memory footprint delta from the start of the tool (MB): init=1.5 overall=3.25")
    if given.get("output_filepath"):
        with open(given["output_filepath"], "wb") as out:
            for detail in interpreter.get_output_details():
                out.write(interpreter.get_tensor(detail["index"]).tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
