"""The contract every vendor benchmark tool implements, and the figures a tool run yields.

A tool turns one run request (model path on the device, runs, warm-up, threads, op profiling, its own
options) into a command line, names the files it writes that the agent should read back, and parses what
it printed into ``ToolFigures``. It knows nothing of transports, retries, power or records.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np

from hwnas.device_agent.errors import AgentError, InvalidInput
from hwnas.device_agent.tensors import InputSpec


class ToolOutputError(AgentError):
    """The tool finished but said nothing this parser understands (a new version, a truncated log)."""

    status_code = "INTERNAL"


class ToolMissing(AgentError):
    """The tool is not on the device (any more): no retry helps until a person installs it."""

    status_code = "FAILED_PRECONDITION"


class ToolCrashed(AgentError):
    """The tool died (a signal, a non-zero exit without a verdict on the model): retried, then failed."""

    status_code = "INTERNAL"


class ModelRejected(InvalidInput):
    """The tool refused the model (unsupported op, not a model of its format): retrying cannot help."""


@dataclass(frozen=True)
class CheckIO:
    """The output check of one tool run (``tools.check_io``): the model's inputs at the run's shapes, fed from
    files holding the check's seeded values, and its outputs, which the tool writes to one file."""

    inputs: tuple[InputSpec, ...]  # concrete dims
    outputs: tuple[InputSpec, ...]  # in the model's order; a dynamic dim is None
    folder: str = ""  # the scratch folder on the device
    suffix: str = "bin"  # of the outputs file, as the tool writes it
    resized: bool = False  # an input has a dynamic dim, which the run's shape fixes
    python: str = ""  # the interpreter that runs the tool's COMPANION, where the tool has one

    def input_path(self, index: int) -> str:
        return f"{self.folder}/check-input-{index}.bin"

    @property
    def output_path(self) -> str:
        return f"{self.folder}/check-outputs.{self.suffix}"


@dataclass(frozen=True)
class ToolRun:
    """What the agent asks of one tool run. Paths are on the device."""

    executable: str
    model: str
    scratch: str
    threads: int
    runs: int
    warmup_runs: int
    op_profile: bool
    check: CheckIO | None = None  # feed the check's inputs and write the outputs (tools with OUTPUTS only)


@dataclass(frozen=True)
class OpTiming:
    name: str
    op_type: str
    time_ms: float


@dataclass
class ToolFigures:
    """What a tool printed, in milliseconds and bytes; a figure the tool did not print stays at its default."""

    mean_ms: float
    stats: dict[str, float] = field(default_factory=dict)  # any of count, min_ms, max_ms, median_ms, p90_ms, ...
    samples_ms: list[float] = field(default_factory=list)  # per inference, where the tool gives them
    load_ms: float = 0.0
    first_inference_ms: float = 0.0
    peak_memory_bytes: int = 0
    memory_source: str = ""
    op_profile: list[OpTiming] = field(default_factory=list)
    details: dict[str, float] = field(default_factory=dict)  # tool-specific figures, e.g. trtexec's GPU compute
    version: str = ""  # where the output says it
    warmup_runs: int | None = None  # where the tool warms up its own way, how many untimed runs it made


def number(text: str) -> float:
    """A number as tools print it (1.24027e+06, 0.25)."""
    return float(text)


NUMBER = r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"


def find(pattern: str, text: str, flags: int = 0) -> re.Match | None:
    """The last match of ``pattern``: tools print warm-up figures before the timed ones."""
    matches = list(re.finditer(pattern, text, flags))
    return matches[-1] if matches else None


class BenchmarkTool(abc.ABC):
    name: str  # the backend name jobs ask for, e.g. "benchmark-model"
    executable: str  # the binary looked up on the device when --tool is not given
    model_format: str  # what the controller sends: "onnx" or "tflite" (the file's suffix on the device)
    # Options a lab sets with --tool-option KEY=VALUE, with their help; each tool checks its values.
    OPTIONS: Mapping[str, str] = {}
    # Output that means "this model will not run here": a verdict on the model, not a failure of the tool.
    REJECTIONS: tuple[str, ...] = ()
    # Whether the tool prints a per-op profile this parser reads: one that does not refuses op_profile before
    # the model is copied, instead of returning a record without it.
    KEEPS_OP_PROFILE = True
    # The suffix of the file the tool writes the output check's outputs to; "" where it writes none, and the
    # check is skipped with a warning that says so.
    OUTPUTS = ""
    # For a tool that feeds random inputs and writes no outputs but is a Python console script of its runtime's
    # wheel: a script of tools/companions/ that the tool's own interpreter runs after the timed run to write
    # the check's outputs with the same runtime and device (check_io.run_companion).
    COMPANION = ""
    PRINTS_MEMORY = True  # False: the tool prints no memory figure, and its COMPANION measures the footprint

    def __init__(self, executable: str = "", options: Mapping[str, str] | None = None) -> None:
        self.executable_path = executable or self.executable
        options = dict(options or {})
        unknown = sorted(set(options) - set(self.OPTIONS))
        if unknown:
            allowed = ", ".join(f"{k} ({v})" for k, v in self.OPTIONS.items()) or "none"
            raise ValueError(f"{self.name} has no option(s) {unknown}; --tool-option takes: {allowed}")
        self.options = options

    @abc.abstractmethod
    def command(self, run: ToolRun) -> list[str]:
        """The command line (argv) for ``run``."""

    def output_files(self, run: ToolRun) -> dict[str, str]:
        """Files the tool writes (name -> path on the device) that ``parse`` reads."""
        return {}

    @abc.abstractmethod
    def parse(self, output: str, files: Mapping[str, str]) -> ToolFigures:
        """Figures from the tool's stdout and stderr (together) and its files; ToolOutputError if none."""

    def check_unavailable(self) -> str | None:
        """Why this tool cannot give the output check's outputs, or None where it can."""
        if self.OUTPUTS:
            return None
        return (f"{PurePosixPath(self.executable_path).name} writes no outputs a check can read; the in-process "
                "backends (litert, onnxruntime, openvino, torch) check theirs")

    def companion_args(self, threads: int) -> list[str]:
        """The COMPANION's options that set up the runtime as the tool's run did (device, precision, threads)."""
        return []

    def read_outputs(self, data: bytes, check: CheckIO) -> dict[str, np.ndarray]:
        """The outputs the tool wrote to ``check.output_path`` (its bytes: ``data``), by name in the model's
        order; ToolOutputError where they cannot be read."""
        raise ToolOutputError(f"{self.name} writes no outputs")

    def version_command(self) -> str | None:
        """A shell command printing the tool's version, or None to take it from the run's own output (or,
        failing that, the executable's sha256)."""
        return None

    def rejection(self, output: str) -> str | None:
        """The line saying the tool refused the model, if it did."""
        for line in output.splitlines():
            if any(marker in line for marker in self.REJECTIONS):
                return line.strip()
        return None

    @property
    def settings(self) -> dict[str, str]:
        """How the tool was set up, for every record's runtime_settings."""
        return dict(self.options)
