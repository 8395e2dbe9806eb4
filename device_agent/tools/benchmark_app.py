"""OpenVINO ``benchmark_app``: compiles the ONNX model for a device (CPU, GPU, NPU) and times it.

It runs synchronously (``-api sync``, one inference at a time, as hwnas protocols time) for exactly the
requested count (``-niter``). With a thread count it must be told ``-hint none -nstreams 1 -nthreads N``
(its own rule); without one, ``-hint latency``. Its figures come from the JSON statistics report
(``-json_stats``), which rounds to 0.01 ms, refined by its console summary, which keeps microseconds
below 1 ms. It has no warm-up count: it runs one untimed first inference, whose time it reports, and the
record says one warm-up run was made. Per-node counters come from ``-report_type detailed_counters``.
It feeds random inputs and writes no outputs, so the output check's outputs come from its companion
(``companions/openvino_outputs.py``), run by the Python of its console script on the same device.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

import numpy as np

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
from hwnas.device_agent.tools.check_io import split_raw


class BenchmarkAppTool(BenchmarkTool):
    name = "benchmark-app"
    executable = "benchmark_app"
    model_format = "onnx"
    OPTIONS = {"device": "CPU (default), GPU, NPU, ... as OpenVINO names it",
               "precision": "inference precision hint, e.g. f32, bf16, f16 (default: the device's)"}
    REJECTIONS = ("Unable to read the model", "Cannot create",
                  "Error reading network", "is not supported", "Unsupported operation",
                  "Check 'error_message.empty()' failed", "OpConversionFailure", "Failed to read model")
    OUTPUTS = "bin"  # written by its companion (it feeds random inputs and writes no outputs itself)
    COMPANION = "openvino_outputs.py"

    def __init__(self, executable: str = "", options: Mapping[str, str] | None = None) -> None:
        super().__init__(executable, options)
        self.device = self.options.get("device", "CPU")
        if not re.fullmatch(r"[A-Z]+(\.\d+)?", self.device):
            raise ValueError(f"--tool-option device must be an OpenVINO device name such as CPU or GPU.1, "
                             f"got {self.device!r}")

    def command(self, run: ToolRun) -> list[str]:
        argv = [self.executable_path, "-m", run.model, "-d", self.device, "-api", "sync", "-niter", str(run.runs),
                "-report_type", "detailed_counters" if run.op_profile else "no_counters",
                "-report_folder", run.scratch, "-json_stats"]
        if run.threads > 0:
            argv += ["-hint", "none", "-nstreams", "1", "-nthreads", str(run.threads)]
        else:
            argv += ["-hint", "latency"]
        if "precision" in self.options:
            argv += ["-infer_precision", self.options["precision"]]
        return argv

    def companion_args(self, threads: int) -> list[str]:
        precision = self.options.get("precision")
        return ["--device", self.device, *(["--precision", precision] if precision else [])]

    def read_outputs(self, data: bytes, check: CheckIO) -> dict[str, np.ndarray]:
        return split_raw(data, check.outputs)

    def output_files(self, run: ToolRun) -> dict[str, str]:
        files = {"report": f"{run.scratch}/benchmark_report.json"}
        if run.op_profile:
            files["counters"] = f"{run.scratch}/benchmark_detailed_counters_report.json"
        return files

    def parse(self, output: str, files: Mapping[str, str]) -> ToolFigures:
        try:
            results = json.loads(files.get("report") or "")["execution_results"]
            mean = float(results["avg latency"])
            figures = ToolFigures(
                mean_ms=mean,
                stats={"count": float(results["total number of iterations"]), "mean_ms": mean,
                       "median_ms": float(results["latency (ms)"]), "min_ms": float(results["min latency"]),
                       "max_ms": float(results["max latency"])},
                load_ms=float(results.get("read model time (ms)", 0)) + float(results["compile model time (ms)"]),
                first_inference_ms=float(results["first inference time (ms)"]),
                details={"throughput_fps": float(results["throughput"])})
        except (ValueError, KeyError, TypeError) as exc:
            raise ToolOutputError(f"benchmark_app wrote no readable statistics report ({exc})") from None
        figures.warmup_runs = 1  # benchmark_app's one untimed first inference; it has no warm-up count
        # Its console keeps microseconds below 1 ms, where the JSON report rounds to 0.01 ms: prefer it.
        for label, stat in (("Average", "mean_ms"), ("Median", "median_ms"), ("Min", "min_ms"), ("Max", "max_ms")):
            line = find(rf"\b{label}:\s+({NUMBER}) (ms|us)\b", output)
            if line:
                figures.stats[stat] = float(line.group(1)) * (1e-3 if line.group(2) == "us" else 1.0)
        figures.mean_ms = figures.stats["mean_ms"]
        memory = find(r"Compile model ram used (\d+) KB", output)
        if memory:
            figures.peak_memory_bytes = int(memory.group(1)) * 1024
            figures.memory_source = "benchmark_app: RAM used by compiling the model (KB)"
        version = find(rf"Build \.+ (\S*{NUMBER}\S*)", output)
        if version:
            figures.version = version.group(1)
        figures.op_profile = counters(files.get("counters") or "")
        return figures


def counters(text: str) -> list[OpTiming]:
    """Executed nodes of the detailed counters report, with their real time (ms)."""
    if not text.strip():
        return []
    try:
        requests = json.loads(text)["detailed_performance"]
        return [OpTiming(name=n["name"], op_type=n["node_type"], time_ms=float(n["real_time"]))
                for n in requests[0]["nodes"] if n.get("status") == "Status.EXECUTED"]
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ToolOutputError(f"benchmark_app's detailed counters report is not what it should be ({exc})") from None
