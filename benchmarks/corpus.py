"""The reference corpus through the graph IR (issue #38): per network, MACs against fvcore, parameters against
torch, import time and memory, and the round trip's output error at every opset.

Each network is exported by torch at opsets 13, 17 and 20 (TorchScript exporter) and at 20 by the dynamo
exporter (``--dynamo``; 10-170 s a network here), imported (``import_onnx``: the CG and its learnt values),
re-exported from the CG with those values and run in onnxruntime beside the original on one seeded input.
Import time is the median of three imports of the opset-17 file (``from_onnx``, the CG alone); import memory
is the peak resident set a fresh process adds importing it, the bytes already read (its own address space's
high-water mark: ``ru_maxrss`` would carry this process's), for the CG alone and then with the learnt values
(``import_onnx``).

    python -m benchmarks.corpus [--networks resnet50,convnext_tiny] [--dynamo]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine_line
from hwnas.controller.corpus import registry
from hwnas.controller.graph.onnx_export import to_onnx_bytes
from hwnas.controller.graph.onnx_import import import_onnx

_MEMORY_PROBE = """
import sys
from pathlib import Path
from hwnas.device_agent.memory_probe import peak_rss_bytes
data = Path(sys.argv[1]).read_bytes()
from hwnas.controller.graph.onnx_import import from_onnx, import_onnx
before = peak_rss_bytes()
from_onnx(data)
structure = peak_rss_bytes()
import_onnx(data)
print(structure - before, peak_rss_bytes() - before)
"""


def _run(data: bytes, xs: list[np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(None, {spec.name: x for spec, x in zip(session.get_inputs(), xs, strict=True)})[0]


def _fvcore_macs(name: str) -> int:
    import torch
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(registry.build(name),
                                 tuple(torch.randn(shape) for shape in registry.network(name).input_shapes))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return sum(v for k, v in analysis.by_operator().items() if k in ("conv", "linear", "addmm", "matmul"))


def measure(name: str, dynamo: bool = False) -> dict[str, float]:
    entry = registry.network(name)
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(shape).astype(np.float32) for shape in entry.input_shapes]
    row: dict[str, float] = {}
    forms = [(opset, "torchscript") for opset in registry.OPSETS] + [(registry.DYNAMO_OPSET, "dynamo")] * dynamo
    for opset, exporter in forms:
        started = time.perf_counter()
        original = registry.export(name, opset, exporter=exporter)
        exported_s = time.perf_counter() - started
        imported = import_onnx(original)
        expected, got = _run(original, xs), _run(to_onnx_bytes(imported.graph, weights=imported.weights), xs)
        key = opset if exporter == "torchscript" else exporter
        row[f"error_{key}"] = float(np.abs(expected - got).max() / np.abs(expected).max())
        row[f"export_s_{key}"] = exported_s
        row.setdefault("arch_ids", set()).add(imported.graph.arch_id)  # type: ignore[union-attr]
    data = registry.export(name, 17)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        graph = import_onnx(data).graph
        times.append(time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        path.write_bytes(data)
        done = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(path)], capture_output=True, text=True,
                              check=True)
    torch_params = sum(p.numel() for p in registry.build(name).parameters())
    structure, with_weights = (int(v) / 2**20 for v in done.stdout.split())
    row.update(macs=graph.macs(), fvcore_macs=_fvcore_macs(name), params=graph.params(), torch_params=torch_params,
               import_s=statistics.median(times), import_mib=structure, weights_mib=with_weights,
               model_mib=len(data) / 2**20, arch_ids=len(row["arch_ids"]))  # type: ignore[arg-type]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--networks", default=",".join(registry.names()))
    parser.add_argument("--dynamo", action="store_true", help="also the dynamo exporter's form (needs onnxscript)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    rows = {name: measure(name, args.dynamo) for name in args.networks.split(",")}
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"machine: {machine_line()}\n")
    print("| network | MACs (CG) | fvcore | params (CG) | torch | import (s) | import peak (MiB): CG / with "
          "weights | model (MiB) | round-trip error 13 / 17 / 20 | dynamo: export (s) / error | CGs across forms |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['macs'] / 1e6:.1f} M | {r['fvcore_macs'] / 1e6:.1f} M | {r['params'] / 1e6:.3f} M | "
              f"{r['torch_params'] / 1e6:.3f} M | {r['import_s']:.3f} | "
              f"{r['import_mib']:.0f} / {r['weights_mib']:.0f} | "
              f"{r['model_mib']:.0f} | {r['error_13']:.1e} / {r['error_17']:.1e} / {r['error_20']:.1e} | "
              + (f"{r['export_s_dynamo']:.0f} / {r['error_dynamo']:.1e} | " if "error_dynamo" in r else "n/a | ")
              + f"{r['arch_ids']} |")


if __name__ == "__main__":
    main()
