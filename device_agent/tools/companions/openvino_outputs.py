"""Companion of OpenVINO's ``benchmark_app`` for the output check: benchmark_app feeds random inputs and
writes no outputs, so after its timed run the agent runs this script with the Python that runs the tool
(its console script's interpreter, so the same ``openvino`` package and the same device plugin) to compute
the check's outputs on the device the tool used.

It runs on the device, not in the agent: it imports nothing of hwnas. Inputs are raw little-endian float32
files in the model's input order (``--input PATH:D0,D1,...``); the outputs are written back to back, raw,
in the model's output order, as ``benchmark_model --output_filepath`` writes them.
"""

import argparse

import numpy as np
import openvino as ov


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--device", default="CPU")
    parser.add_argument("--precision", default="", help="INFERENCE_PRECISION_HINT, as benchmark_app's -infer_precision")
    parser.add_argument("--input", action="append", default=[], metavar="PATH:DIMS")
    args = parser.parse_args()
    config = {"INFERENCE_PRECISION_HINT": args.precision} if args.precision else {}
    compiled = ov.Core().compile_model(args.model, args.device, config)
    feed = {}
    for k, item in enumerate(args.input):
        path, dims = item.rsplit(":", 1)
        feed[k] = np.fromfile(path, dtype="<f4").reshape([int(d) for d in dims.split(",")])
    results = compiled.create_infer_request().infer(feed)
    with open(args.output, "wb") as out:
        for port in compiled.outputs:
            out.write(np.ascontiguousarray(results[port]).tobytes())


if __name__ == "__main__":
    main()
