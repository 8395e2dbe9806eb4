"""A lab's own benchmark tool, described by a small TOML file: ``--backend tool:FILE.toml``.

``qnn-net-run``, ``snpe-net-run`` or any other vendor SDK becomes a device key without code: the file gives
the command template, the format the tool runs, how to read each figure (a regex over the output, or a key
of a JSON file the tool writes) and what output means the tool refused the model. An example ships in
``device_agent/tools/examples/``; docs/devices.md explains each field.

    name = "qnn-net-run"            # the backend name jobs ask for
    format = "onnx"                 # what the controller sends: onnx or tflite
    executable = "qnn-net-run"      # looked up on the device unless --tool PATH is given
    version = "{executable} --version"              # optional; else the executable's sha256
    command = "{executable} --model {model} ... {runs} ..."   # a shell command line on the device
    rejects = ["Failed to create graph"]            # optional
    [files]                                         # optional: files to read back after the run
    report = "{scratch}/result.json"
    [figures]                                       # mean_ms is required
    mean_ms = { regex = 'NetRun:\\s+(\\d+) us', scale = 0.001, section = 'Execute Stats (Average)' }
    load_ms = { json = "report", key = "latency.init_ms" }

Placeholders: {executable} {model} {scratch} {runs} {warmup} {threads}.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hwnas.device_agent.tools.base import BenchmarkTool, ToolFigures, ToolOutputError, ToolRun

try:
    import tomllib
except ImportError:  # Python 3.10 (tomllib is 3.11+)
    import tomli as tomllib

FORMATS = ("onnx", "tflite")
FIGURES = ("mean_ms", "min_ms", "max_ms", "median_ms", "p90_ms", "p99_ms", "std_ms", "count", "load_ms",
           "first_inference_ms", "peak_memory_bytes", "samples_ms")
PLACEHOLDERS = ("executable", "model", "scratch", "runs", "warmup", "threads")
BUILTIN_NAMES = ("onnxruntime", "onnxruntime-cuda", "litert", "edgetpu", "torch", "openvino", "simulator",
                 "replay", "instant", "benchmark-model", "trtexec", "benchmark-app")


class ToolFileError(ValueError):
    """The TOML file is not a valid tool description; the message names the field and the fix."""


class Figure:
    """How to read one figure: a regex's first group over the output (optionally after a section heading),
    or a key path into a JSON file the tool wrote; times ``scale``."""

    def __init__(self, name: str, spec: Any, files: Mapping[str, str], where: str) -> None:
        if not isinstance(spec, dict) or ("regex" in spec) == ("json" in spec):
            raise ToolFileError(f"{where}: figures.{name} needs exactly one of regex = '...' or json = 'FILE' "
                                "(with key = 'a.b')")
        self.name, self.scale = name, spec.get("scale", 1.0)
        if not isinstance(self.scale, int | float) or self.scale <= 0:
            raise ToolFileError(f"{where}: figures.{name}.scale must be a positive number")
        self.section = spec.get("section", "")
        if "regex" in spec:
            try:
                self.regex: re.Pattern | None = re.compile(spec["regex"])
            except re.error as exc:
                raise ToolFileError(f"{where}: figures.{name}.regex does not compile: {exc}") from None
            if self.regex.groups < 1:
                raise ToolFileError(f"{where}: figures.{name}.regex needs one (group) around the number")
            self.file = self.key = ""
        else:
            self.regex = None
            self.file, self.key = spec["json"], spec.get("key", "")
            if self.file not in files:
                raise ToolFileError(f"{where}: figures.{name} reads json = {self.file!r}, which [files] does not "
                                    f"name (it names {sorted(files) or 'nothing'})")
            if not self.key:
                raise ToolFileError(f"{where}: figures.{name} needs key = 'path.in.the.json'")

    def read(self, output: str, files: Mapping[str, str]) -> Any:
        """The figure (a float, or a list of floats for samples_ms), or None where the tool did not print it."""
        if self.regex is not None:
            text = output
            if self.section:
                at = text.find(self.section)
                if at < 0:
                    return None
                text = text[at + len(self.section):]
            match = self.regex.search(text)
            return None if match is None else float(match.group(1)) * self.scale
        value: Any = json.loads(files.get(self.file) or "null")
        for part in self.key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is None:
            return None
        if isinstance(value, list):
            return [float(v) * self.scale for v in value]
        return float(value) * self.scale


class CustomTool(BenchmarkTool):
    KEEPS_OP_PROFILE = False  # the file describes no per-op table

    def __init__(self, file: str, executable: str = "", options: Mapping[str, str] | None = None) -> None:
        path = Path(file)
        where = str(path)
        try:
            spec = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ToolFileError(f"--backend tool:{file}: cannot read it ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ToolFileError(f"{where} is not valid TOML: {exc}") from None
        for key in ("name", "format", "command"):
            if not isinstance(spec.get(key), str) or not spec[key]:
                raise ToolFileError(f"{where}: {key} = '...' is required")
        if spec["name"] in BUILTIN_NAMES or not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", spec["name"]):
            raise ToolFileError(f"{where}: name {spec['name']!r} must be lower-case letters, digits, '.', '_' or '-' "
                                f"and not a built-in backend's name")
        if spec["format"] not in FORMATS:
            raise ToolFileError(f"{where}: format must be one of {', '.join(FORMATS)}, got {spec['format']!r}")
        unknown_places = sorted(set(re.findall(r"\{(\w+)\}", spec["command"])) - set(PLACEHOLDERS))
        if unknown_places:
            raise ToolFileError(f"{where}: command uses {unknown_places}; placeholders are "
                                f"{', '.join('{' + p + '}' for p in PLACEHOLDERS)}")
        self.name, self.model_format, self.template = spec["name"], spec["format"], spec["command"]
        self.executable = spec.get("executable") or spec["command"].split()[0]
        self.version_template = spec.get("version", "")
        self.REJECTIONS = tuple(spec.get("rejects", ()))
        self.files = dict(spec.get("files", {}))
        figures = spec.get("figures", {})
        unknown = sorted(set(figures) - set(FIGURES))
        if unknown:
            raise ToolFileError(f"{where}: figures {unknown} are not known; figures are {', '.join(FIGURES)}")
        if "mean_ms" not in figures:
            raise ToolFileError(f"{where}: figures.mean_ms is required (the tool's mean latency)")
        self.figures = {name: Figure(name, f, self.files, where) for name, f in figures.items()}
        self.file = where
        super().__init__(executable, options)

    def _fill(self, template: str, run: ToolRun | None) -> str:
        values = {"executable": shlex.quote(self.executable_path)}
        if run is not None:
            values.update(model=shlex.quote(run.model), scratch=shlex.quote(run.scratch), runs=str(run.runs),
                          warmup=str(run.warmup_runs), threads=str(run.threads))
        return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), template)

    def command(self, run: ToolRun) -> list[str]:
        return ["sh", "-c", self._fill(self.template, run)]

    def output_files(self, run: ToolRun) -> dict[str, str]:
        return {name: self._fill(path, run) for name, path in self.files.items()}

    def version_command(self) -> str | None:
        return self._fill(self.version_template, None) if self.version_template else None

    def parse(self, output: str, files: Mapping[str, str]) -> ToolFigures:
        try:
            values = {name: figure.read(output, files) for name, figure in self.figures.items()}
        except (ValueError, TypeError) as exc:
            raise ToolOutputError(f"{self.name}: a figure in its output is not a number ({exc})") from None
        if values.get("mean_ms") is None:
            raise ToolOutputError(f"{self.name}: the output has no mean latency (figures.mean_ms in {self.file})")
        stats = {k: v for k, v in values.items() if k in ("count", "min_ms", "max_ms", "median_ms", "p90_ms",
                                                            "p99_ms", "std_ms") and v is not None}
        stats["mean_ms"] = values["mean_ms"]
        return ToolFigures(mean_ms=values["mean_ms"], stats=stats, samples_ms=values.get("samples_ms") or [],
                           load_ms=values.get("load_ms") or 0.0,
                           first_inference_ms=values.get("first_inference_ms") or 0.0,
                           peak_memory_bytes=int(values.get("peak_memory_bytes") or 0),
                           memory_source=f"{self.name}: figures.peak_memory_bytes of {Path(self.file).name}"
                           if values.get("peak_memory_bytes") else "")
