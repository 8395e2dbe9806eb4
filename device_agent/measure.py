"""One measurement of a loaded model: resolve inputs, warm up, time by a protocol, read power.

The same function runs behind the gRPC agent and in-process (benchmarks use it
to measure the fabric's overhead), so nothing here knows about gRPC.
Timing uses ``time.perf_counter_ns`` around each inference, with inputs built
beforehand and the garbage collector off for the whole timed stretch.
"""

from __future__ import annotations

import abc
import functools
import gc
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hwnas.device_agent import activation_memory
from hwnas.device_agent.activation_memory import ActivationEstimate
from hwnas.device_agent.backends.base import InputSpec, LoadedModel
from hwnas.device_agent.errors import InvalidInput, MeasurementStopped
from hwnas.device_agent.host import HostState, memory_total_bytes, read_state, state_warnings
from hwnas.device_agent.interference import RunWatch
from hwnas.device_agent.power.base import PowerSource
from hwnas.device_agent.protocols import get_protocol
from hwnas.device_agent.stats import LatencyStats, summarize
from hwnas.protos import output_check

log = logging.getLogger("hwnas.agent.measure")

POWER_POLL_NS = 5_000_000_000  # fold energy counters every 5 s so a wrap is never missed
OP_PROFILE_RUNS = 20  # inferences a per-op profile averages, after the timed window
SLOW_STEP_S = 1.0  # a load or bind taking longer is logged at INFO with its duration (torch.compile: minutes)


@dataclass(frozen=True)
class MeasureOptions:
    protocol: str = "latbench"
    protocol_params: Mapping[str, float] = field(default_factory=dict)
    batch_size: int = 0
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    warmup_runs: int | None = None
    warmup_seconds: float | None = None
    deadline_seconds: float = 0.0
    op_profile: bool = False  # keep the runtime's own per-op profile (LoadedModel.keeps_op_profile says where)
    memory: bool = False  # measure the model's footprint in a fresh process where the runtime reports none
    output_check: bool = False  # run the check's seeded input once and return the outputs' sampled values

    def validate(self) -> None:
        """Refuse nonsense before the request waits in the queue."""
        if self.batch_size < 0:
            raise InvalidInput(f"batch_size must be >= 0, got {self.batch_size}")
        if self.warmup_runs is not None and self.warmup_runs < 0:
            raise InvalidInput(f"warmup_runs must be >= 0, got {self.warmup_runs}")
        if self.warmup_seconds is not None and not 0 <= self.warmup_seconds < 3600:
            raise InvalidInput(f"warmup_seconds must be in [0, 3600), got {self.warmup_seconds}")
        if not (math.isfinite(self.deadline_seconds) and self.deadline_seconds >= 0):  # NaN passed a "< 0" check
            raise InvalidInput(f"deadline_seconds must be a finite number >= 0, got {self.deadline_seconds}")
        for name, dims in self.input_shapes.items():
            if not dims or any(d <= 0 for d in dims):
                raise InvalidInput(f"input_shapes[{name!r}] must be positive dims, got {list(dims)}")
        get_protocol(self.protocol).resolve(self.protocol_params)


@dataclass(frozen=True)
class PowerOutcome:
    available: bool
    source: str = ""
    unavailable_reason: str = ""
    window_s: float = 0.0
    energy_j: float = 0.0
    mean_power_w: float = 0.0
    energy_per_inference_mj: float = 0.0
    sampling_period_s: float = 0.0
    idle_power_w: float = 0.0


@dataclass(frozen=True)
class Measurement:
    protocol: str
    protocol_params: dict[str, float]
    protocol_details: dict[str, float]
    latency_ms: float
    stats: LatencyStats
    samples_ns: list[int]
    power: PowerOutcome
    host: HostState
    threads: int
    batch_size: int
    input_shapes: dict[str, tuple[int, ...]]
    warmup_runs_done: int
    wall_ms: float
    started_unix_ns: int
    finished_unix_ns: int
    warnings: list[str]
    runtime_settings: dict[str, str] = field(default_factory=dict)
    # Cold start and memory, where the runtime or tool reports them (0 and "" where not).
    load_ms: float = 0.0
    first_inference_ms: float = 0.0
    peak_memory_bytes: int = 0
    memory_source: str = ""
    op_profile: list[tuple[str, str, float]] = field(default_factory=list)  # (name, op type, ms per inference)
    outputs: list[tuple[str, list[int], list[float]]] = field(default_factory=list)  # the output check's values
    tool: ToolProvenance | None = None


@dataclass(frozen=True)
class ToolProvenance:
    """Which vendor tool measured, as the record's environment names it."""

    name: str
    version: str
    command: str  # the exact command line, as the device ran it
    transport: str  # "local", "adb:SERIAL", "ssh://USER@HOST:PORT"


class StopToken:
    """Set once, from any thread, to end a measurement; it also interrupts the runtime.

    The deadline lives on the token so that it can be armed before the model is loaded and bound: a
    hostile model's first (untimed) inference is as much under the deadline as the timed ones.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reason: str | None = None
        self.status_code = ""
        self._on_stop: list[Callable[[], None]] = []
        self._closed = False
        self._timer: threading.Timer | None = None

    @property
    def stopped(self) -> bool:
        return self.reason is not None

    def arm_deadline(self, seconds: float) -> None:
        """Stop with DEADLINE_EXCEEDED ``seconds`` from now; 0 means none. The first armed deadline holds."""
        if seconds <= 0:
            return
        with self._lock:
            if self._timer is not None or self._closed:
                return
            self._timer = threading.Timer(
                seconds, self.stop, args=(f"measurement passed its deadline of {seconds:g} s", "DEADLINE_EXCEEDED"))
            self._timer.daemon = True
            self._timer.start()

    def on_stop(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._on_stop.append(callback)
            fire = self.reason is not None
        if fire:
            callback()

    def close(self) -> None:
        """The measurement is over: later stops (a finished RPC's callback) must not touch the runtime."""
        with self._lock:
            self._on_stop.clear()
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()

    def stop(self, reason: str, status_code: str) -> None:
        with self._lock:
            if self.reason is not None or self._closed:
                return
            self.reason, self.status_code = reason, status_code
            callbacks = list(self._on_stop)
        for callback in callbacks:
            callback()


class SelfMeasuredModel(LoadedModel):
    """A model an external tool measures whole: the tool loads it, warms up and times it by itself (a vendor
    benchmark tool on a phone or a board), so there is nothing to bind and time here."""

    threads = 0
    watch_host = False

    @property
    def inputs(self) -> list[InputSpec]:
        return []  # the tool reads them from the model

    def bind(self, shapes: dict[str, tuple[int, ...]]) -> Callable[[], None]:
        raise TypeError("a self-measured model is measured by measure_itself, never bound")

    @abc.abstractmethod
    def measure_itself(self, options: MeasureOptions, power_source: PowerSource | None, power_unavailable_reason: str,
                       token: StopToken, idle_power_w: float) -> Measurement:
        """Run the tool by ``options`` and turn what it printed into a Measurement."""


def resolve_input_shapes(
    specs: list[InputSpec], batch_size: int, requested: Mapping[str, tuple[int, ...]]
) -> dict[str, tuple[int, ...]]:
    """Concrete shapes for every model input, checked against what the model fixes."""
    names = [s.name for s in specs]
    requested = dict(requested)
    if "" in requested and len(specs) == 1:  # a nameless shape means "the only input"
        requested[specs[0].name] = requested.pop("")
    unknown = sorted(set(requested) - set(names))
    if unknown:
        raise InvalidInput(f"input_shapes names {unknown}, but the model's inputs are {names}")
    shapes = {}
    for spec in specs:
        want = requested.get(spec.name)
        shown = [d if d is not None else "?" for d in spec.dims]
        if want is not None:
            if len(want) != len(spec.dims):
                raise InvalidInput(
                    f"input {spec.name!r} has rank {len(spec.dims)} {shown}, the request gives {list(want)}"
                )
            for axis, (fixed, given) in enumerate(zip(spec.dims, want, strict=True)):
                if fixed is not None and fixed != given:
                    raise InvalidInput(
                        f"input {spec.name!r} expects {shown}: dim {axis} is fixed at {fixed}, "
                        f"the request gives {given}"
                    )
            shapes[spec.name] = tuple(want)
            continue
        dims = list(spec.dims)
        if dims and dims[0] is None:
            dims[0] = batch_size or 1
        elif dims and batch_size and dims[0] != batch_size:
            raise InvalidInput(
                f"input {spec.name!r} has a fixed batch dimension {dims[0]}; cannot run batch_size={batch_size}"
            )
        dynamic = [axis for axis, d in enumerate(dims) if d is None]
        if dynamic:
            raise InvalidInput(
                f"input {spec.name!r} {shown} has dynamic dims at positions {dynamic}; pass input_shapes"
            )
        shapes[spec.name] = tuple(int(d) for d in dims)
    return shapes


INPUT_MEMORY_SHARE = 8  # inputs may take at most 1/8 of the host's memory (they are built before timing)
ACTIVATION_MEMORY_SHARE = 2  # activations (inputs included) may take at most half of it


def check_input_size(specs: list[InputSpec], shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Refuse inputs too large for this host before allocating them (1x3x50000x50000 is 30 GB of floats)."""
    import numpy as np

    total = sum(math.prod(shapes[s.name]) * np.dtype(s.dtype).itemsize for s in specs)
    limit = memory_total_bytes() // INPUT_MEMORY_SHARE
    if limit and total > limit:
        raise InvalidInput(f"inputs {dict(shapes)} take {total / 2**30:.1f} GiB; this agent accepts at most "
                           f"{limit / 2**30:.1f} GiB of inputs (an eighth of its memory)")


@functools.lru_cache(maxsize=64)
def _activations(path: Path, shapes: tuple[tuple[str, tuple[int, ...]], ...]) -> ActivationEstimate | None:
    return activation_memory.estimate(path, dict(shapes))  # cache files are named by content: a path is a model


def check_activation_memory(model: LoadedModel, shapes: Mapping[str, tuple[int, ...]], batch_size: int) -> None:
    """Refuse a run whose activations cannot fit in this host's memory, before the runtime allocates them."""
    if model.onnx_path is None:
        return
    found = _activations(model.onnx_path, tuple(sorted(shapes.items())))
    limit = memory_total_bytes() // ACTIVATION_MEMORY_SHARE
    if found is None or not limit or found.peak_bytes <= limit:
        return
    batch = batch_size or next(iter(shapes.values()), (1,))[0] or 1
    fits = max(1, int(batch * limit / found.peak_bytes))
    raise InvalidInput(f"at inputs {dict(shapes)} the model's activations need at least "
                       f"{found.peak_bytes / 2**30:.1f} GiB (estimated from its tensor shapes); this agent runs "
                       f"at most {limit / 2**30:.1f} GiB (half its memory): use a batch size of at most about {fits}")


def checked_outputs(model: LoadedModel, shapes: Mapping[str, tuple[int, ...]]) -> list:
    """The outputs' values at the check's positions for the check's seeded input; [] where the runtime gives
    no outputs or the model takes inputs that are not float32 (a quantised model's int8 inputs)."""
    if any(spec.dtype != "float32" for spec in model.inputs):
        return []
    feed = {spec.name: output_check.check_input(shapes[spec.name], k) for k, spec in enumerate(model.inputs)}
    produced = model.outputs(feed)
    return output_check.sample(produced) if produced else []


def measure(
    model: LoadedModel,
    options: MeasureOptions,
    power_source: PowerSource | None,
    power_unavailable_reason: str = "no power source configured",
    token: StopToken | None = None,
    idle_power_w: float = 0.0,
) -> Measurement:
    """Warm up, then time ``model`` by ``options.protocol``; raise MeasurementStopped when stopped.

    With ``idle_power_w`` > 0, mean power and energy per inference are net of that idle baseline.
    """
    if model.answer is not None:
        return answered(model, options)
    token = token or StopToken()
    if isinstance(model, SelfMeasuredModel):
        return model.measure_itself(options, power_source, power_unavailable_reason, token, idle_power_w)
    protocol = get_protocol(options.protocol)
    params = protocol.resolve(options.protocol_params)
    shapes = resolve_input_shapes(model.inputs, options.batch_size, options.input_shapes)
    check_input_size(model.inputs, shapes)
    check_activation_memory(model, shapes, options.batch_size)
    if options.op_profile and model.keeps_op_profile:
        raise InvalidInput(model.keeps_op_profile)
    token.arm_deadline(options.deadline_seconds)
    token.on_stop(model.rearm())  # from here on a stop interrupts the runtime, binding's first inference included
    timed = 0
    phase = "binding"

    def stopped_error() -> MeasurementStopped:
        if phase == "binding":
            return MeasurementStopped(f"{token.reason}; stopped while binding (the first, untimed inference)",
                                      token.status_code)
        done = timed if phase == "timed" else 0
        return MeasurementStopped(f"{token.reason}; stopped after {timed} {phase} inferences", token.status_code, done)

    try:
        if token.stopped:
            raise stopped_error()
        bind_started = time.monotonic()
        run_once = model.bind(shapes)
        first_inference_s = time.monotonic() - bind_started  # the inputs built and the one untimed inference
        if first_inference_s > SLOW_STEP_S:
            log.info("binding (the first, untimed inference: compiling, where the runtime compiles) took %.1f s",
                     first_inference_s)
    except MemoryError:
        token.close()
        raise InvalidInput(f"the model with inputs {dict(shapes)} does not fit in this agent's memory") from None
    except Exception as exc:
        token.close()
        if token.stopped and not isinstance(exc, MeasurementStopped):  # the runtime was interrupted on purpose
            raise stopped_error() from None
        raise
    phase = "warm-up"

    host = read_state()
    meter = power_source.open() if power_source is not None else None
    last_poll: int | None = None  # set once the meter runs: warm-up is outside the energy window

    def time_one() -> int:
        nonlocal timed, last_poll
        if token.stopped:
            raise stopped_error()
        t0 = time.perf_counter_ns()
        try:
            device_ns = run_once()
        except Exception:
            if token.stopped:  # the runtime was interrupted on purpose
                raise stopped_error() from None
            raise
        elapsed = time.perf_counter_ns() - t0
        if device_ns is not None:  # the backend timed the inference on the device itself (CUDA events)
            elapsed = device_ns
        timed += 1
        if meter is not None and last_poll is not None and t0 - last_poll > POWER_POLL_NS:
            meter.poll()
            last_poll = t0
        return elapsed

    warmup_runs = options.warmup_runs if options.warmup_runs is not None else protocol.default_warmup_runs
    warmup_s = options.warmup_seconds or 0.0
    gc_was_enabled = gc.isenabled()
    gc.collect(1)  # young generations only: a full collection costs tens of ms per call
    gc.disable()
    wall0, started_unix_ns = time.perf_counter(), time.time_ns()
    try:
        warm = 0
        warm_end = time.perf_counter() + warmup_s
        while warm < warmup_runs or time.perf_counter() < warm_end:
            time_one()
            warm += 1
        timed, phase = 0, "timed"
        log.debug("the timed window opens after %d warm-up inference(s)", warm)
        watch = RunWatch() if model.watch_host else None
        if watch is not None:
            watch.start()
        if meter is not None:
            meter.start()
            last_poll = time.perf_counter_ns()
        outcome = protocol.run(time_one, params)
        reading = None
        if meter is not None:
            try:
                reading = meter.stop()
            except OSError as exc:  # a meter unplugged mid-window: the latency stands, the power figure does not
                power_unavailable_reason = str(exc)
        run_warnings = watch.close() if watch is not None else []
    finally:
        token.close()
        if gc_was_enabled:
            gc.enable()
    wall_ms = (time.perf_counter() - wall0) * 1e3
    details = dict(outcome.details)
    ops = []
    if options.op_profile:  # what the profile cost the device: its own session and inferences, after the window
        profile0 = time.perf_counter()
        ops = model.op_times(shapes, OP_PROFILE_RUNS) or []
        details["op_profile_ms"] = (time.perf_counter() - profile0) * 1e3
    outputs = checked_outputs(model, shapes) if options.output_check else []

    if reading is not None:
        inferences = len(outcome.samples_ns)
        net_j = reading.energy_j - idle_power_w * reading.window_s
        power = PowerOutcome(
            available=True,
            source=reading.source,
            window_s=reading.window_s,
            energy_j=reading.energy_j,
            mean_power_w=net_j / reading.window_s if reading.window_s > 0 else 0.0,
            energy_per_inference_mj=net_j * 1e3 / inferences,
            sampling_period_s=reading.sampling_period_s,
            idle_power_w=idle_power_w,
        )
    else:
        power = PowerOutcome(available=False, unavailable_reason=power_unavailable_reason)
    return Measurement(
        protocol=protocol.name,
        protocol_params=params,
        protocol_details=details,
        latency_ms=outcome.latency_ms,
        stats=summarize(outcome.samples_ns),
        samples_ns=outcome.samples_ns,
        power=power,
        host=host,
        threads=model.threads,
        batch_size=next(iter(shapes.values()))[0] if shapes else 0,
        input_shapes=shapes,
        warmup_runs_done=warm,
        wall_ms=wall_ms,
        started_unix_ns=started_unix_ns,
        finished_unix_ns=time.time_ns(),
        warnings=[*state_warnings(host), *run_warnings],
        runtime_settings=dict(model.runtime_settings),
        load_ms=model.load_ms,
        first_inference_ms=first_inference_s * 1e3,
        op_profile=ops,
        outputs=outputs,
    )


def answered(model: LoadedModel, options: MeasureOptions) -> Measurement:
    """The result of a model whose backend looks up or computes its latency: nothing is timed, it says so."""
    answer = model.answer
    assert answer is not None
    now, value = time.time_ns(), float(answer.latency_ms)
    host = read_state()
    if answer.energy_mj is not None:
        window_s, energy_j = value / 1e3, answer.energy_mj / 1e3
        power = PowerOutcome(available=True, source=answer.energy_source, window_s=window_s, energy_j=energy_j,
                             mean_power_w=energy_j / window_s if window_s > 0 else 0.0,
                             energy_per_inference_mj=answer.energy_mj)
    else:
        power = PowerOutcome(available=False, unavailable_reason=answer.no_energy_reason)
    return Measurement(
        protocol=answer.protocol, protocol_params={}, protocol_details=dict(answer.details), latency_ms=value,
        stats=LatencyStats(count=0, min_ms=value, mean_ms=value, median_ms=value, p90_ms=value, p99_ms=value,
                           max_ms=value, std_ms=0.0),
        samples_ns=[], power=power,
        host=host, threads=model.threads, batch_size=options.batch_size or 1, input_shapes={},
        warmup_runs_done=0, wall_ms=0.0, started_unix_ns=now, finished_unix_ns=now,
        warnings=[model.note, *state_warnings(host)] if model.note else state_warnings(host),
    )
