"""Tool backends: a vendor benchmark tool, run through a transport, as an hwnas backend like any other.

For each measurement the model is copied to a fresh scratch folder on the device, the tool runs there by the
request's protocol (its run and warm-up counts), its output and files are read back and the folder is
removed, whatever happened. The record's environment names the tool, its version, the exact command line
and the transport.

How the hwnas protocols map onto a tool: ``fixed`` asks the tool for ``count`` runs, ``latbench`` for
``runs x per_run``. Where the tool hands back every inference's time (trtexec), the protocol's own
reduction runs over them and the record carries the protocol's name; where it prints only statistics, the
headline is the tool's mean and the protocol is recorded as ``NAME/tool-mean``. ``adaptive`` needs to decide
after each block, which a tool run cannot do, so it is refused.

Faults: a transport fault (device offline or unauthorised, connection refused, host key changed) is retried
here a few times; if it persists the job goes back to the queue (UNAVAILABLE) without spending an attempt.
A model fault ends the job with its cause: the tool is missing (FAILED_PRECONDITION), it refused the model
(INVALID_ARGUMENT), it crashed or printed nothing parseable (INTERNAL, retried by the controller).
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from hwnas.device_agent.backends.base import Backend
from hwnas.device_agent.errors import InvalidInput, MeasurementStopped
from hwnas.device_agent.host import HostState, read_state, state_warnings
from hwnas.device_agent.measure import (
    Measurement,
    MeasureOptions,
    PowerOutcome,
    SelfMeasuredModel,
    StopToken,
    ToolProvenance,
)
from hwnas.device_agent.power.base import Availability, PowerSource
from hwnas.device_agent.protocols import ProtocolOutcome, get_protocol
from hwnas.device_agent.stats import LatencyStats, summarize
from hwnas.device_agent.tools import check_io
from hwnas.device_agent.tools.base import (
    BenchmarkTool,
    CheckIO,
    ModelRejected,
    ToolCrashed,
    ToolMissing,
    ToolOutputError,
    ToolRun,
)
from hwnas.device_agent.transports import Transport, TransportError
from hwnas.device_agent.transports.base import CommandResult

log = logging.getLogger("hwnas.agent.tools")

TRANSPORT_TRIES = 3  # a transport fault is tried this often within one measurement
RETRY_WAIT_S = (1.0, 3.0)  # waits between those tries
TOOL_TIMEOUT_S = 1800.0  # a tool run with no deadline still ends (an engine build can take minutes)
TAIL_LINES = 6  # lines of a crashed tool's output kept in its error


def run_counts(options: MeasureOptions) -> tuple[str, dict[str, float], int, int]:
    """(protocol name, resolved parameters, timed runs, warm-up runs) a tool is asked for."""
    protocol = get_protocol(options.protocol)
    params = protocol.resolve(options.protocol_params)
    if protocol.name == "fixed":
        runs = int(params["count"])
    elif protocol.name == "latbench":
        runs = int(params["runs"] * params["per_run"])
    else:
        raise InvalidInput(f"protocol {protocol.name!r} decides after each block of inferences, which a vendor "
                           "tool's single run cannot; tool backends take latbench or fixed")
    warmup = options.warmup_runs if options.warmup_runs is not None else protocol.default_warmup_runs
    return protocol.name, params, runs, warmup


def reduce(protocol_name: str, params: dict[str, float], samples_ms: list[float], runs: int,
           mean_ms: float) -> tuple[str, ProtocolOutcome]:
    """The protocol's own headline over the tool's samples where it gave one per run; else the tool's mean."""
    if len(samples_ms) == runs:
        samples_ns = iter([round(s * 1e6) for s in samples_ms])
        return protocol_name, get_protocol(protocol_name).run(lambda: next(samples_ns), params)
    return f"{protocol_name}/tool-mean", ProtocolOutcome(latency_ms=mean_ms, samples_ns=[round(s * 1e6)
                                                                                         for s in samples_ms])


def signal_name(code: int) -> str:
    """'SIGSEGV' for a shell's exit status 139 (128 + the signal) or a process's -11, else ''."""
    number = code - 128 if 128 < code < 160 else -code if code < 0 else 0
    try:
        return signal.Signals(number).name if number else ""
    except ValueError:
        return ""


class ToolBackend(Backend):
    """One vendor tool on one transport. Subclasses (in the backend registry) name the tool."""

    needs_transport = True
    make_tool: Callable[..., BenchmarkTool]
    fallbacks: tuple[str, ...] = ()  # other executables that do the same job, tried when --tool is not given

    def __init__(self, transport: Transport, tool: str = "", **options: str) -> None:
        self.transport = transport
        self.tool = self.make_tool(executable=tool, options=options)
        self.name = self.tool.name
        self.runtime_name = self.tool.name
        self._version = ""
        self._version_lock = threading.Lock()
        self._python: str | None = None
        self._python_known = False
        wanted = self.tool.executable_path
        for candidate in (wanted, *(() if tool else self.fallbacks)):
            found = transport.which(candidate)
            if found is not None:
                break
        else:
            raise ValueError(f"{wanted} is not on {transport.name}: install it there, or name its path with "
                             "--tool PATH")
        if candidate != wanted:  # another executable doing the same job (litert-benchmark for benchmark_model)
            self.tool = self.make_tool(executable=candidate, options=options)
        self.tool.executable_path = found

    @classmethod
    def probe(cls) -> Availability:
        return Availability(True, "a vendor benchmark tool, run on this host or on a device through --via")

    def runtime_version(self) -> str:  # type: ignore[override] - an instance knows its tool
        return self._version

    def version(self, printed: str) -> str:
        """The tool's version: its version command, what its output said, else its binary's sha256."""
        with self._version_lock:
            if self._version:
                return self._version
            command = self.tool.version_command()
            text = ""
            if command:
                done = self.transport.run(command, timeout_s=60)
                text = done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else ""
            if not text and printed:
                text = printed
            if not text:
                done = self.transport.run(f"sha256sum {shlex.quote(self.tool.executable_path)}", timeout_s=60)
                digest = done.stdout.split()[0] if done.returncode == 0 and done.stdout.split() else ""
                text = f"sha256:{digest[:16]}" if digest else "unknown"
            self._version = text
            return text

    def companion_python(self) -> str | None:
        """The interpreter of the tool's console script (for its COMPANION), or None: looked up once."""
        with self._version_lock:
            if not self._python_known:
                self._python = check_io.interpreter(self.transport, self.tool.executable_path)
                self._python_known = True
            return self._python

    def load(self, model_path: Path, threads: int) -> ToolModel:
        return ToolModel(self, model_path, threads)


@dataclass
class RunOutcome:
    """What one tool run left: its result and files, the device's warnings and power reading, and for the
    output check the outputs file's bytes (or why there are none) and the companion's memory footprint."""

    done: CommandResult
    files: dict[str, str]
    warnings: list[str]
    reading: Any
    written: bytes | None = None
    no_outputs: str = ""
    footprint: int | None = None


class ToolModel(SelfMeasuredModel):
    def __init__(self, backend: ToolBackend, model_path: Path, threads: int) -> None:
        self.backend = backend
        self.model_path = model_path
        self.threads = threads
        self.runtime_settings = dict(backend.tool.settings)

    def measure_itself(self, options: MeasureOptions, power_source: PowerSource | None, power_unavailable_reason: str,
                       token: StopToken, idle_power_w: float) -> Measurement:
        protocol_name, params, runs, warmup = run_counts(options)
        if options.op_profile and not self.backend.tool.KEEPS_OP_PROFILE:
            raise InvalidInput(f"{self.backend.tool.name} ({self.backend.tool.executable_path}) prints no per-op "
                               "profile; the in-process backends litert, onnxruntime, openvino and torch keep one")
        backend, transport, tool = self.backend, self.backend.transport, self.backend.tool
        # A tool that prints no memory figure has its companion measure the footprint, on the check's inputs.
        footprint = options.memory and bool(tool.COMPANION) and not tool.PRINTS_MEMORY
        check, skipped = None, []
        if options.output_check or footprint:
            python = backend.companion_python() if tool.COMPANION else None
            planned = check_io.plan(tool, self.model_path, options.batch_size, options.input_shapes, python)
            if isinstance(planned, str):
                skipped = [f"{what}: {planned}" for what, asked in (("output check skipped", options.output_check),
                                                                     ("memory footprint not measured", footprint))
                           if asked]
            else:
                check = planned
        token.arm_deadline(options.deadline_seconds)
        device_power = transport.power_source()
        if device_power is not None:  # a phone: its battery, never the agent host's meter
            availability = device_power.probe()
            power_source = device_power if availability.available else None
            power_unavailable_reason = availability.detail
        # The agent host's governor, clock and load describe a local tool's run, not a phone's or a board's.
        host = read_state() if transport.kind == "local" else HostState("", 0.0, 0.0, 0.0, 0.0)
        t0, started_unix_ns = time.perf_counter(), time.time_ns()
        try:
            ran = self._run_with_retries(runs, warmup, options.op_profile, check, footprint, power_source, token)
        finally:
            token.close()
        done, warnings = ran.done, ran.warnings
        outputs = self._outputs(check, ran, warnings) if options.output_check else []
        wall_ms = (time.perf_counter() - t0) * 1e3
        output = done.stdout + done.stderr
        figures = tool.parse(output, ran.files)
        if footprint and ran.footprint is not None:
            figures.peak_memory_bytes, figures.memory_source = ran.footprint, check_io.FOOTPRINT_SOURCE
        elif footprint and check is not None:
            why = ran.no_outputs or "the device keeps no /proc/self/status"
            warnings.append(f"memory footprint not measured: {why}")
        protocol, outcome = reduce(protocol_name, params, figures.samples_ms, runs, figures.mean_ms)
        stats = summarize(outcome.samples_ns) if outcome.samples_ns else LatencyStats(
            count=int(figures.stats.get("count", runs)), min_ms=figures.stats.get("min_ms", 0.0),
            mean_ms=figures.stats.get("mean_ms", figures.mean_ms), median_ms=figures.stats.get("median_ms", 0.0),
            p90_ms=figures.stats.get("p90_ms", 0.0), p99_ms=figures.stats.get("p99_ms", 0.0),
            max_ms=figures.stats.get("max_ms", 0.0), std_ms=figures.stats.get("std_ms", 0.0))
        power = self._power(ran.reading, power_unavailable_reason, stats.mean_ms or figures.mean_ms, idle_power_w)
        provenance = ToolProvenance(backend.tool.name, backend.version(figures.version), done.command, transport.name)
        return Measurement(
            protocol=protocol, protocol_params=params, protocol_details={**outcome.details, **figures.details},
            latency_ms=outcome.latency_ms, stats=stats, samples_ns=outcome.samples_ns, power=power, host=host,
            threads=self.threads, batch_size=options.batch_size or 1,
            input_shapes={spec.name: spec.dims for spec in check.inputs} if check else {},
            warmup_runs_done=warmup if figures.warmup_runs is None else figures.warmup_runs,
            wall_ms=wall_ms, started_unix_ns=started_unix_ns, finished_unix_ns=time.time_ns(),
            warnings=[*state_warnings(host), *skipped, *warnings], outputs=outputs,
            runtime_settings=dict(self.runtime_settings), load_ms=figures.load_ms,
            first_inference_ms=figures.first_inference_ms, peak_memory_bytes=figures.peak_memory_bytes,
            memory_source=figures.memory_source,
            op_profile=[(op.name, op.op_type, op.time_ms) for op in figures.op_profile], tool=provenance)

    def _outputs(self, check: CheckIO | None, ran: RunOutcome, warnings: list[str]) -> list:
        """The output check's sampled values from the file the tool (or its companion) wrote; [] and a warning
        saying why where there are none."""
        if check is None:
            return []
        tool = self.backend.tool
        if ran.no_outputs:
            warnings.append(f"output check skipped: {ran.no_outputs}")
            return []
        if ran.written is None:
            executable = PurePosixPath(tool.executable_path).name
            warnings.append(f"output check skipped: {executable} wrote no outputs file (a build older than the flag "
                            "that asks for one?)")
            return []
        try:
            return check_io.sampled(tool, ran.written, check)
        except ToolOutputError as exc:
            warnings.append(f"output check skipped: {exc}")
            return []

    def _run_with_retries(self, runs: int, warmup: int, op_profile: bool, check: CheckIO | None, footprint: bool,
                          power_source: PowerSource | None, token: StopToken) -> RunOutcome:
        transport = self.backend.transport
        for attempt in range(1, TRANSPORT_TRIES + 1):
            try:
                return self._run_once(runs, warmup, op_profile, check, footprint, power_source, token)
            except TransportError as exc:
                if token.stopped:
                    raise MeasurementStopped(f"{token.reason} (and {exc})", token.status_code) from None
                if attempt == TRANSPORT_TRIES:
                    log.warning("%s: giving the job back after %d tries: %s", transport.name, attempt, exc)
                    raise TransportError(f"{exc} (tried {attempt} times)") from None
                log.warning("%s: %s; trying again (%d of %d)", transport.name, exc, attempt + 1, TRANSPORT_TRIES)
                self._wait(RETRY_WAIT_S[min(attempt - 1, len(RETRY_WAIT_S) - 1)], token)
        raise AssertionError("unreachable")

    def _run_once(self, runs: int, warmup: int, op_profile: bool, check: CheckIO | None, footprint: bool,
                  power_source: PowerSource | None, token: StopToken) -> RunOutcome:
        """Copy, run, read back and clean up once; TransportError where the device failed us."""
        transport, tool = self.backend.transport, self.backend.tool
        transport.connect()
        warnings = transport.thermal_warnings()
        self.runtime_settings.update(transport.settings())
        scratch = transport.make_scratch()
        try:
            model = f"{scratch}/model.{tool.model_format}"
            transport.push(self.model_path, model)
            if check is not None:
                check = dataclasses.replace(check, folder=scratch)
                with tempfile.TemporaryDirectory(prefix="hwnas-check-") as folder:
                    for local, remote in check_io.write_inputs(check, Path(folder)):
                        transport.push(local, remote)
            run = ToolRun(tool.executable_path, model, scratch, self.threads, runs, warmup, op_profile, check)
            command = transport.pinned(shlex.join(tool.command(run)))
            meter = power_source.open() if power_source is not None else None
            if token.stopped:
                raise MeasurementStopped(f"{token.reason}; stopped before the tool started", token.status_code)
            running = transport.start(command)
            token.on_stop(running.kill)
            token.on_stop(lambda: transport.stop_matching(scratch))
            if meter is not None:
                meter.start()
            done = running.wait(TOOL_TIMEOUT_S)  # the token's deadline kills it sooner
            reading = None
            if meter is not None:
                try:
                    reading = meter.stop()
                except OSError as exc:
                    log.warning("%s: power reading failed: %s", transport.name, exc)
            if done.killed or token.stopped:
                if not token.stopped:  # our own time limit, not the token's: end what runs on the device too
                    transport.stop_matching(scratch)
                raise MeasurementStopped(token.reason or f"the tool ran past {TOOL_TIMEOUT_S:g} s and was stopped",
                                         token.status_code or "DEADLINE_EXCEEDED")
            self._judge(done)
            files = {name: transport.read_text(path) or "" for name, path in tool.output_files(run).items()}
            no_outputs, measured = None, None
            if check is not None and tool.COMPANION:
                no_outputs, measured = check_io.run_companion(transport, tool, check, model, self.threads, footprint)
            written = transport.read_bytes(check.output_path) if check is not None and not no_outputs else None
            return RunOutcome(done, files, warnings, reading, written, no_outputs or "", measured)
        finally:
            transport.remove_scratch(scratch)

    def _judge(self, done: CommandResult) -> None:
        """A finished run's verdict: nothing, or the model fault it shows."""
        transport, tool = self.backend.transport, self.backend.tool
        if done.returncode == 0:
            return
        output = done.stdout + done.stderr
        where = f"{tool.name} on {transport.name}"
        rejected = tool.rejection(output)
        if rejected:
            raise ModelRejected(f"{where} refused the model: {rejected}")
        if done.returncode in (126, 127):  # the shell's "command not found" and "not executable"
            said = done.stderr.strip().splitlines()[-1:] or ["no output"]
            raise ToolMissing(f"{where}: the tool is missing ({tool.executable_path}): {said[0][-200:]}")
        tail = " | ".join(line.strip() for line in output.strip().splitlines()[-TAIL_LINES:])
        sig = signal_name(done.returncode)
        how = f"was killed by {sig}" if sig else f"exited with status {done.returncode}"
        raise ToolCrashed(f"{where} {how}: {tail or 'no output'}")

    @staticmethod
    def _wait(seconds: float, token: StopToken) -> None:
        stopped = threading.Event()
        token.on_stop(stopped.set)
        stopped.wait(seconds)

    @staticmethod
    def _power(reading, unavailable_reason: str, latency_ms: float, idle_power_w: float) -> PowerOutcome:
        """Mean power over the tool's run (warm-up and loading included: a tool's timed stretch cannot be
        told apart from outside), and energy per inference as that power times the mean latency."""
        if reading is None or reading.window_s <= 0:
            return PowerOutcome(available=False, unavailable_reason=unavailable_reason or "no power source")
        mean_w = reading.energy_j / reading.window_s - idle_power_w
        return PowerOutcome(available=True, source=reading.source, window_s=reading.window_s,
                            energy_j=reading.energy_j, mean_power_w=mean_w,
                            energy_per_inference_mj=mean_w * latency_ms, sampling_period_s=reading.sampling_period_s,
                            idle_power_w=idle_power_w)

