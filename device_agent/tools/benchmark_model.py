"""LiteRT/TFLite ``benchmark_model``: the C++ tool phones and boards run, and the LiteRT wheel's
``litert-benchmark`` (``ai-edge-litert``) where a board has Python.

The C++ tool prints its warm-up and timed statistics in microseconds (``count=50 first=... avg=...
std=...``), an ``Inference timings in us: Init: .., First inference: ..`` line and a memory footprint
line, and, with ``--enable_op_profiling``, per-op tables. It prints no per-inference samples and no
version, so records name the binary by its sha256. ``litert-benchmark`` takes other flags and writes its
figures to ``--result_json`` in milliseconds (rounded to 0.01 ms); the executable's name picks the dialect.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import PurePosixPath

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

DELEGATES = ("cpu", "xnnpack", "gpu", "nnapi", "hexagon")
_COUNT_LINE = re.compile(rf"^(?:INFO: )?count=(\d+)(?: first=({NUMBER}))? curr=({NUMBER})(?: min=({NUMBER}) "
                         rf"max=({NUMBER}) avg=({NUMBER}) std=({NUMBER}))?(?: p5=({NUMBER}) median=({NUMBER}) "
                         rf"p95=({NUMBER}))?", re.MULTILINE)
_TIMINGS = re.compile(rf"Inference timings in us: Init: ({NUMBER}), First inference: ({NUMBER}), "
                      rf"Warmup \(avg\): ({NUMBER}), Inference \(avg\): ({NUMBER})")
# The tool's memory lines, best first: what each means is what the record's memory_source says.
_MEMORY = (
    (rf"Overall peak memory footprint \(MB\) via periodic monitoring: ({NUMBER})",
     "benchmark_model: overall peak memory footprint via periodic monitoring (MB)"),
    (rf"Peak memory footprint \(MB\): init={NUMBER} overall=({NUMBER})",
     "benchmark_model: peak memory footprint overall (MB; the tool calls it approximate)"),
    (rf"Memory footprint delta from the start of the tool \(MB\): init={NUMBER} overall=({NUMBER})",
     "benchmark_model: memory footprint delta from the tool's start, overall (MB; approximate)"),
)
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_./-]+")
REJECTIONS = ("Failed to mmap model", "Failed to load model", "Failed to construct interpreter",
              "Model provided has model identifier", "Failed to apply", "Didn't find op for builtin opcode",
              "Encountered unresolved custom op", "failed to prepare", "Failed to allocate tensors")


class BenchmarkModelTool(BenchmarkTool):
    name = "benchmark-model"
    executable = "benchmark_model"
    model_format = "tflite"
    OPTIONS = {"delegate": f"one of {', '.join(DELEGATES)} (default xnnpack)",
               "nnapi_accelerator": "NNAPI accelerator name, e.g. qti-dsp (with delegate=nnapi)"}
    REJECTIONS = REJECTIONS
    OUTPUTS = "bin"  # --output_filepath: the last inference's outputs, raw, back to back

    def __init__(self, executable: str = "", options: Mapping[str, str] | None = None) -> None:
        super().__init__(executable, options)
        delegate = self.options.get("delegate", "xnnpack")
        if delegate not in DELEGATES:
            raise ValueError(f"--tool-option delegate must be one of {', '.join(DELEGATES)}, got {delegate!r}")
        if "nnapi_accelerator" in self.options and delegate != "nnapi":
            raise ValueError("--tool-option nnapi_accelerator needs delegate=nnapi")
        self.delegate = delegate

    def command(self, run: ToolRun) -> list[str]:
        argv = [self.executable_path, f"--graph={run.model}", f"--num_runs={run.runs}", "--min_secs=0",
                f"--warmup_runs={run.warmup_runs}", "--warmup_min_secs=0"]
        if run.threads > 0:
            argv.append(f"--num_threads={run.threads}")
        argv += {"cpu": ["--use_xnnpack=false"], "xnnpack": ["--use_xnnpack=true"], "gpu": ["--use_gpu=true"],
                 "nnapi": ["--use_nnapi=true"], "hexagon": ["--use_hexagon=true"]}[self.delegate]
        if "nnapi_accelerator" in self.options:
            argv.append(f"--nnapi_accelerator_name={self.options['nnapi_accelerator']}")
        if run.op_profile:
            argv.append("--enable_op_profiling=true")
        if run.check is not None:
            argv += check_flags(run.check)
        return argv

    def read_outputs(self, data: bytes, check: CheckIO) -> dict[str, np.ndarray]:
        return split_raw(data, check.outputs)

    def parse(self, output: str, files: Mapping[str, str]) -> ToolFigures:
        timings = find(_TIMINGS, output)
        end = timings.start() if timings else len(output)
        counts = [m for m in _COUNT_LINE.finditer(output[:end]) if m.group(6)]
        if timings is None or not counts:
            raise ToolOutputError("benchmark_model printed no 'Inference timings in us' line with statistics")
        timed = counts[-1]  # the warm-up's statistics come first
        us = 1e-3
        stats = {"count": float(timed.group(1)), "min_ms": float(timed.group(4)) * us,
                 "max_ms": float(timed.group(5)) * us, "mean_ms": float(timed.group(6)) * us,
                 "std_ms": float(timed.group(7)) * us}
        if timed.group(9):
            stats["median_ms"] = float(timed.group(9)) * us
        figures = ToolFigures(mean_ms=float(timings.group(4)) * us, stats=stats,
                              load_ms=float(timings.group(1)) * us, first_inference_ms=float(timings.group(2)) * us,
                              details={"warmup_mean_ms": float(timings.group(3)) * us})
        if timed.group(8):
            figures.details.update(p5_ms=float(timed.group(8)) * us, p95_ms=float(timed.group(10)) * us)
        for pattern, source in _MEMORY:
            memory = find(pattern, output)
            if memory:
                figures.peak_memory_bytes, figures.memory_source = int(float(memory.group(1)) * 2**20), source
                break
        figures.op_profile = op_table(output)
        return figures


def check_flags(check: CheckIO) -> list[str]:
    """Feed the check's input files to every inference and write the outputs. Inputs are matched by position,
    the names only label them (the tool warns where a label differs from the tensor's name), so a name the
    flags' syntax cannot carry (',' or ':') is labelled by its position instead."""
    names = [spec.name if _PLAIN_NAME.fullmatch(spec.name) else f"input{k}" for k, spec in enumerate(check.inputs)]
    return [f"--input_layer={','.join(names)}",
            f"--input_layer_shape={':'.join(','.join(map(str, spec.dims)) for spec in check.inputs)}",
            f"--input_layer_value_files={','.join(f'{n}:{check.input_path(k)}' for k, n in enumerate(names))}",
            f"--output_filepath={check.output_path}"]


def op_table(output: str) -> list[OpTiming]:
    """The 'Run Order' table of the regular runs' operator-wise profile: node type, avg ms, name per row."""
    start = output.find("Operator-wise Profiling Info for Regular Benchmark Runs")
    if start < 0:
        return []
    section = output[start:].split("============================== Run Order", 1)
    if len(section) < 2:
        return []
    ops = []
    for line in section[1].splitlines()[2:]:
        if not line.strip() or line.startswith("="):
            break
        cells = [c.strip() for c in line.strip().split("\t")]
        if len(cells) >= 9:
            ops.append(OpTiming(name=cells[8], op_type=cells[0], time_ms=float(cells[3])))
    return ops


class LiteRtBenchmarkTool(BenchmarkModelTool):
    """The ``litert-benchmark`` console script of the ai-edge-litert wheel."""

    executable = "litert-benchmark"
    OPTIONS = {"delegate": "one of cpu, gpu, npu (default cpu)"}
    KEEPS_OP_PROFILE = False  # the script has no op-profiling flag; the litert backend profiles in-process
    # Nor flags to feed inputs or write outputs: its companion computes the check's outputs with the same wheel.
    COMPANION = "litert_outputs.py"
    PRINTS_MEMORY = False  # its --result_json holds latencies only
    REJECTIONS = ("Failed to load model", "Failed to create", "ERROR: [", "is not fully accelerated")

    def __init__(self, executable: str = "", options: Mapping[str, str] | None = None) -> None:
        BenchmarkTool.__init__(self, executable, options)
        self.delegate = self.options.get("delegate", "cpu")
        if self.delegate not in ("cpu", "gpu", "npu"):
            raise ValueError(f"--tool-option delegate must be cpu, gpu or npu for litert-benchmark, "
                             f"got {self.delegate!r}")

    def command(self, run: ToolRun) -> list[str]:
        argv = [self.executable_path, "--model", run.model, "--num_runs", str(run.runs), "--warmup_runs",
                str(run.warmup_runs), "--result_json", self.output_files(run)["result"]]
        if run.threads > 0:
            argv += ["--num_threads", str(run.threads)]
        if self.delegate != "cpu":
            argv.append(f"--use_{self.delegate}")
        return argv

    def output_files(self, run: ToolRun) -> dict[str, str]:
        return {"result": f"{run.scratch}/result.json"}

    def check_unavailable(self) -> str | None:
        if self.delegate != "cpu":
            return (f"litert-benchmark runs on the {self.delegate} here, and its companion computes outputs on "
                    "LiteRT's CPU path only")
        return None

    def companion_args(self, threads: int) -> list[str]:
        return ["--threads", str(threads)] if threads > 0 else []

    def parse(self, output: str, files: Mapping[str, str]) -> ToolFigures:
        try:
            latency = json.loads(files.get("result") or "")["latency"]
            figures = ToolFigures(
                mean_ms=float(latency["avg_ms"]),
                stats={"count": float(latency["num_runs"]), "min_ms": float(latency["min_ms"]),
                       "max_ms": float(latency["max_ms"]), "median_ms": float(latency["median_ms"]),
                       "std_ms": float(latency["std_ms"]), "mean_ms": float(latency["avg_ms"])},
                load_ms=float(latency["init_ms"]), first_inference_ms=float(latency["warmup_first_ms"]),
                details={"p5_ms": float(latency["p5_ms"]), "p95_ms": float(latency["p95_ms"]),
                         "warmup_mean_ms": float(latency["warmup_avg_ms"])})
        except (ValueError, KeyError, TypeError) as exc:
            raise ToolOutputError(f"litert-benchmark wrote no readable --result_json ({exc})") from None
        return figures

    def version_command(self) -> str:
        """The ai-edge-litert version of the interpreter the console script runs under."""
        return (f'"$(head -1 {self.executable_path} | cut -c3-)" -c "import importlib.metadata as m; '
                f"print('ai-edge-litert', m.version('ai-edge-litert'))\"")


def benchmark_model_tool(executable: str = "", options: Mapping[str, str] | None = None) -> BenchmarkModelTool:
    """The C++ tool, or the wheel's ``litert-benchmark`` when that is the executable named."""
    if "litert-benchmark" in PurePosixPath(executable).name:
        return LiteRtBenchmarkTool(executable, options)
    return BenchmarkModelTool(executable, options)
