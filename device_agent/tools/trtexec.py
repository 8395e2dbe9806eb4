"""NVIDIA TensorRT ``trtexec``: builds an engine from the ONNX model and times it (Jetsons, GPU servers).

Precision is fp32 (default), fp16, int8 (calibrated on random data, so latency only) or best. Each
inference's times come back through ``--exportTimes``, so the hwnas protocol reduces trtexec's own
samples; the headline is trtexec's "Latency" (host to device copy, compute, device to host), and its GPU
compute time is kept in the details. ``--dumpProfile --separateProfileRun`` gives the per-layer profile
without disturbing the timed run. trtexec warms up by time, not by count: ``--warmUp`` is 200 ms unless
the request's warm-up seconds say otherwise. An output check feeds the check's inputs (``--loadInputs``) and
reads the outputs back from ``--exportOutput``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

import numpy as np

from hwnas.device_agent.tensors import InputSpec
from hwnas.device_agent.tools.base import (
    NUMBER,
    BenchmarkTool,
    CheckIO,
    OpTiming,
    ToolFigures,
    ToolOutputError,
    ToolRun,
    find,
)

PRECISIONS = ("fp32", "fp16", "int8", "best")
_SUMMARY = re.compile(rf"(?P<what>Latency|GPU Compute Time|Enqueue Time|H2D Latency|D2H Latency): "
                      rf"min = (?P<min>{NUMBER}) ms, max = (?P<max>{NUMBER}) ms, mean = (?P<mean>{NUMBER}) ms, "
                      rf"median = (?P<median>{NUMBER}) ms(?P<rest>.*)")
_PERCENTILE = re.compile(rf"percentile\((?P<p>\d+(?:\.\d+)?)%\) = (?P<v>{NUMBER}) ms")
_LINE_PREFIX = re.compile(r"^\[[^\]]*\] \[[IWEV]\] ?")
_VERSIONS = (re.compile(r"TensorRT version: (\S+)"), re.compile(r"\[TensorRT v(\d+)\]"))  # best first


class TrtExecTool(BenchmarkTool):
    name = "trtexec"
    executable = "trtexec"
    model_format = "onnx"
    OPTIONS = {"precision": f"one of {', '.join(PRECISIONS)} (default fp32)",
               "warmup_ms": "warm-up time in ms (default 200)"}
    REJECTIONS = ("Failed to parse onnx file", "ModelImporter", "Network must have at least one output",
                  "Engine could not be created", "Unsupported ONNX data type", "No importer registered for op")
    OUTPUTS = "json"  # --exportOutput: each output's name, dimensions and values

    def __init__(self, executable: str = "", options: Mapping[str, str] | None = None) -> None:
        super().__init__(executable, options)
        self.precision = self.options.get("precision", "fp32")
        if self.precision not in PRECISIONS:
            raise ValueError(f"--tool-option precision must be one of {', '.join(PRECISIONS)}, "
                             f"got {self.precision!r}")
        warmup = self.options.get("warmup_ms", "200")
        if not warmup.isdigit():
            raise ValueError(f"--tool-option warmup_ms must be a whole number of ms, got {warmup!r}")
        self.warmup_ms = int(warmup)

    def command(self, run: ToolRun) -> list[str]:
        argv = [self.executable_path, f"--onnx={run.model}", f"--iterations={run.runs}", "--duration=0",
                f"--warmUp={self.warmup_ms}", "--avgRuns=1", f"--exportTimes={self.output_files(run)['times']}"]
        if self.precision != "fp32":
            argv.append(f"--{self.precision}")
        if run.op_profile:
            argv += ["--dumpProfile", "--separateProfileRun"]
        if run.check is not None:
            check = run.check
            # Names in single quotes: trtexec's spec syntax for a name holding ':' (Input:0).
            files = [f"'{spec.name}':{check.input_path(k)}" for k, spec in enumerate(check.inputs)]
            argv += [f"--loadInputs={','.join(files)}", f"--exportOutput={check.output_path}"]
            if check.resized:
                shapes = [f"'{spec.name}':{'x'.join(map(str, spec.dims))}" for spec in check.inputs]
                argv.append(f"--shapes={','.join(shapes)}")
        return argv

    def read_outputs(self, data: bytes, check: CheckIO) -> dict[str, np.ndarray]:
        return exported_outputs(data.decode("utf-8", "replace"), check.outputs)

    def output_files(self, run: ToolRun) -> dict[str, str]:
        return {"times": f"{run.scratch}/times.json"}

    def parse(self, output: str, files: Mapping[str, str]) -> ToolFigures:
        summary = {m["what"]: m for m in _SUMMARY.finditer(output)}
        samples = exported_latencies(files.get("times") or "")
        latency = summary.get("Latency")
        if latency is None and not samples:
            raise ToolOutputError("trtexec printed no performance summary ('Latency: min = ...') and exported "
                                  "no times")
        if latency is not None:
            stats = {"min_ms": float(latency["min"]), "max_ms": float(latency["max"]),
                     "mean_ms": float(latency["mean"]), "median_ms": float(latency["median"])}
            for p in _PERCENTILE.finditer(latency["rest"]):
                if p["p"] in ("90", "99"):
                    stats[f"p{p['p']}_ms"] = float(p["v"])
            mean = float(latency["mean"])
        else:
            stats, mean = {}, sum(samples) / len(samples)
        figures = ToolFigures(mean_ms=mean, stats=stats, samples_ms=samples)
        compute = summary.get("GPU Compute Time")
        if compute is not None:
            figures.details.update(gpu_compute_mean_ms=float(compute["mean"]),
                                   gpu_compute_median_ms=float(compute["median"]))
        built = find(rf"Engine built in ({NUMBER}) sec", output)
        loaded = find(rf"Engine deserialized in ({NUMBER}) sec", output)
        if built:
            figures.details["engine_build_s"] = float(built.group(1))
        figures.load_ms = (float(loaded.group(1)) * 1e3 if loaded else 0.0)
        memory = find(r"\[MemUsageChange\].*now: CPU \d+, GPU (\d+) \(MiB\)", output)
        if memory:
            figures.peak_memory_bytes = int(memory.group(1)) * 2**20
            figures.memory_source = "trtexec: TensorRT-managed GPU memory after creating the execution context (MiB)"
        version = next((m for m in (v.search(output) for v in _VERSIONS) if m), None)
        if version:
            figures.version = f"TensorRT {version.group(1)}"
        figures.op_profile = layer_profile(output)
        return figures


def exported_latencies(text: str) -> list[float]:
    """Per-inference latency (ms) from ``--exportTimes`` JSON: host-side latency, as the summary's."""
    if not text.strip():
        return []
    try:
        entries = json.loads(text)
        return [float(e["latencyMs"]) if "latencyMs" in e else float(e["endOutMs"]) - float(e["startInMs"])
                for e in entries]
    except (ValueError, KeyError, TypeError) as exc:
        raise ToolOutputError(f"trtexec's --exportTimes file is not what it should be ({exc})") from None


def exported_outputs(text: str, outputs: tuple[InputSpec, ...]) -> dict[str, np.ndarray]:
    """``--exportOutput`` JSON (a list of ``{"name", "dimensions": "1x1000", "values"}``; trtexec keeps its
    bindings in a hash map, so the order is not the model's) as arrays in the model's output order."""
    try:
        written = {str(e["name"]): (e["dimensions"], e["values"]) for e in json.loads(text)}
        found = {}
        for spec in outputs:
            dims, values = written[spec.name]
            shape = [int(d) for d in str(dims).split("x") if d]
            found[spec.name] = np.asarray(values, dtype=np.float64).reshape(shape)
        return found
    except (ValueError, KeyError, TypeError) as exc:
        raise ToolOutputError(f"trtexec's --exportOutput file does not hold the model's outputs "
                              f"{[s.name for s in outputs]} ({type(exc).__name__}: {exc})") from None


def layer_profile(output: str) -> list[OpTiming]:
    """The ``=== Profile (N iterations ) ===`` table, in either layout trtexec has printed: numbers first and
    the layer last (TensorRT 8.6+), or the layer first and the numbers last (earlier)."""
    lines = [_LINE_PREFIX.sub("", line) for line in output.splitlines()]
    start = next((i for i, line in enumerate(lines) if line.startswith("=== Profile (")), None)
    if start is None or start + 1 >= len(lines):
        return []
    header = lines[start + 1]
    numbers_first = header.strip().startswith("Time")
    columns = 4 if "Median" in header else 3  # total time, average, [median,] share
    ops = []
    for line in lines[start + 2:]:
        text = line.strip()
        if not text or text.startswith("==="):
            break
        if numbers_first:
            cells = text.split(None, columns)
            if len(cells) <= columns:
                continue
            name, avg = cells[columns], cells[1]
        else:
            cells = text.rsplit(None, columns)
            if len(cells) <= columns:
                continue
            name, avg = cells[0], cells[2]
        if name != "Total":
            ops.append(OpTiming(name=name, op_type="", time_ms=float(avg)))
    return ops
