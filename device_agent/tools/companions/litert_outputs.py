"""Companion of the ai-edge-litert wheel's ``litert-benchmark`` for the output check: the tool feeds random
inputs and writes no outputs, so after its timed run the agent runs this script with the Python that runs
the tool (the same ``ai_edge_litert`` package) to compute the check's outputs with LiteRT's CPU path, the
path the tool ran.

It runs on the device, not in the agent: it imports nothing of hwnas. Inputs are raw little-endian float32
files in the model's input order (``--input PATH:D0,D1,...``); the outputs are written back to back, raw,
in the model's output order, as ``benchmark_model --output_filepath`` writes them.

The tool prints no memory figure, so with ``--footprint`` the script also says, as one JSON line, how far
this fresh process's resident set rose above its level with LiteRT imported (``VmRSS``, and the kernel's
peak ``VmHWM`` where loading and running the model took the process past the imports' own peak) over
loading the model and ``RUNS`` inferences: the model's own footprint, as the agent's memory probe measures
it for in-process backends.
"""

import argparse
import json

import numpy as np
from ai_edge_litert.interpreter import Interpreter

RUNS = 5


def status_bytes(field: str) -> int:
    """``VmRSS`` or ``VmHWM`` of this process (Linux, Android); 0 where the kernel does not say."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--input", action="append", default=[], metavar="PATH:DIMS")
    parser.add_argument("--footprint", action="store_true", help="print the model's footprint as a JSON line")
    args = parser.parse_args()
    baseline, peak_before = status_bytes("VmRSS"), status_bytes("VmHWM")
    interpreter = Interpreter(model_path=args.model, num_threads=args.threads or None)
    details = interpreter.get_input_details()
    values = []
    for detail, item in zip(details, args.input, strict=True):
        path, dims = item.rsplit(":", 1)
        value = np.fromfile(path, dtype="<f4").reshape([int(d) for d in dims.split(",")])
        if list(value.shape) != list(detail["shape"]):
            interpreter.resize_tensor_input(detail["index"], list(value.shape))
        values.append(value)
    interpreter.allocate_tensors()
    for detail, value in zip(details, values, strict=True):
        interpreter.set_tensor(detail["index"], value.astype(detail["dtype"]))
    interpreter.invoke()
    with open(args.output, "wb") as out:
        for detail in interpreter.get_output_details():
            out.write(np.ascontiguousarray(interpreter.get_tensor(detail["index"])).tobytes())
    if args.footprint and baseline:
        for _ in range(RUNS):
            interpreter.invoke()
        peak = status_bytes("VmHWM")
        print(json.dumps({"footprint_bytes": max(0, max(status_bytes("VmRSS"), peak if peak > peak_before else 0)
                                                 - baseline)}))


if __name__ == "__main__":
    main()
