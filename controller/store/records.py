"""The plain values the store takes and gives: job specs, leased jobs, measurement records."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from hwnas.protos import names


def params_json(params: Mapping[str, float]) -> str:
    return json.dumps(dict(sorted(params.items())), separators=(",", ":"))


def make_job_key(arch_id: str, device_key: str, backend: str, protocol: str, params: Mapping[str, float],
                 batch_size: int, model_format: str = "onnx", repeat: str = "") -> str:
    """The identity of one measurement: the same arch on the same device by the same protocol is one job.

    The model format joins the key only when it is not ONNX, so keys made before formats existed still match;
    ``repeat`` only for a measurement meant to be repeated (a golden check), which is one job per repeat.
    """
    digest = hashlib.sha256(params_json(params).encode()).hexdigest()[:12]
    fmt = "" if model_format == "onnx" else f"|{model_format}"
    again = f"|{repeat}" if repeat else ""
    return f"{arch_id}|{device_key}|{backend}{fmt}|{protocol}:{digest}|b{batch_size}{again}"


def device_key_of(job_key: str) -> str:
    """The device key a job key (``make_job_key``) names."""
    return job_key.split("|")[1]


@dataclass(frozen=True)
class ArchRecord:
    arch_id: str
    space: str
    arch: str
    encoding: str
    macs: int
    params: int
    cg_json: str


@dataclass(frozen=True)
class JobSpec:
    campaign: str
    arch_id: str
    device_key: str
    backend: str = "onnxruntime"
    protocol: str = "latbench"
    protocol_params: Mapping[str, float] = field(default_factory=dict)
    batch_size: int = 1
    priority: int = 0
    max_attempts: int = 3
    model_format: str = "onnx"
    # Ask the runtime for its per-op profile too. Not part of the job's identity: the same measurement, with
    # more detail; a job already done keeps its record.
    op_profile: bool = False
    memory: bool = False  # and for the model's own memory footprint (likewise not part of its identity)
    submitted_by: str = ""  # who queued it: a client certificate's subject, a token's name, or user@host
    output_check: bool = False  # check the device's outputs against the controller's fp32 reference
    repeat: str = ""  # which repeat of a measurement made again and again (a golden check): part of its identity

    @property
    def job_key(self) -> str:
        return make_job_key(self.arch_id, self.device_key, self.backend, self.protocol, self.protocol_params,
                            self.batch_size, self.model_format, self.repeat)


@dataclass(frozen=True)
class Job:
    """A job as leased from the queue."""

    id: int
    job_key: str
    campaign: str
    arch_id: str
    device_key: str
    backend: str
    protocol: str
    protocol_params: dict[str, float]
    batch_size: int
    attempts: int
    lease_owner: str | None
    lease_expires_at_unix_s: float | None
    state: str = "leased"
    model_format: str = "onnx"
    op_profile: bool = False
    memory: bool = False
    output_check: bool = False


@dataclass(frozen=True)
class RecordColumn:
    """One column of a measurement record: the one place its name, type and history are written down.

    The store's ``measurements`` table, the export's columns and types, what an older export means, and
    ``MeasurementRecord.to_row``/``from_row`` are all derived from ``RECORD_COLUMNS``.
    """

    name: str
    kind: type  # the value's Python type: int, float, str or bool
    nullable: bool = False
    size: int | None = None  # a string's length limit in the table; None stores it as unbounded text
    wide: bool = False  # a 64-bit integer (nanosecond clocks, MACs)
    since: int = 1  # the schema version that added the column
    before: Any = None  # what a row written before ``since`` holds (the migration's default; older exports)

    @property
    def attribute(self) -> str:
        """The record's attribute this column stores: ``x_json`` holds ``x`` as JSON, the others ``x`` itself."""
        return self.name.removesuffix("_json")


STAT_COLUMNS = ("count", "min_ms", "mean_ms", "median_ms", "p90_ms", "p99_ms", "max_ms", "std_ms")
# The agent's PowerReport field -> its column. Fields with a unit in their name keep it; the others say "power".
POWER_COLUMNS = {"available": "power_available", "source": "power_source", "mean_power_w": "mean_power_w",
                 "energy_per_inference_mj": "energy_per_inference_mj", "unavailable_reason": "power_unavailable_reason",
                 "sampling_period_s": "power_sampling_period_s", "idle_power_w": "idle_power_w"}
RECORD_COLUMNS: tuple[RecordColumn, ...] = (
    RecordColumn("job_key", str, size=200),  # exactly one record per job
    RecordColumn("arch_id", str, size=64),
    RecordColumn("device_key", str, size=200),
    RecordColumn("backend", str, size=64),
    RecordColumn("model_format", str, size=32, since=3, before="onnx"),  # onnx, tflite, tflite-int8
    RecordColumn("protocol", str, size=64),
    RecordColumn("protocol_params_json", str),
    RecordColumn("protocol_details_json", str),
    RecordColumn("batch_size", int),
    RecordColumn("input_shape_json", str),
    RecordColumn("latency_ms", float),
    RecordColumn("count", int, nullable=True),  # the statistics: null for tables that publish only the headline
    *(RecordColumn(name, float, nullable=True) for name in STAT_COLUMNS[1:]),
    RecordColumn("power_available", bool),
    RecordColumn("power_source", str, nullable=True, size=200),
    RecordColumn("mean_power_w", float, nullable=True),
    RecordColumn("energy_per_inference_mj", float, nullable=True),
    RecordColumn("power_unavailable_reason", str, nullable=True),
    RecordColumn("power_sampling_period_s", float, nullable=True, since=3),  # 0 for an energy counter
    RecordColumn("idle_power_w", float, nullable=True, since=3),  # the idle baseline subtracted, if any
    RecordColumn("environment_json", str),
    RecordColumn("agent_name", str, size=200),  # importers write "imported:<source>"
    RecordColumn("agent_version", str, size=64),
    RecordColumn("queue_wait_ms", float),
    RecordColumn("started_unix_ns", int, wide=True),
    RecordColumn("finished_unix_ns", int, wide=True),
    RecordColumn("recorded_at_unix_s", float),
    RecordColumn("replayed", bool),
    RecordColumn("warnings_json", str, since=4, before="[]"),  # interference, throttling, power
    # Cold start and memory where the runtime or tool reports them (null where not), and its per-op profile.
    RecordColumn("load_ms", float, nullable=True, since=5),
    RecordColumn("first_inference_ms", float, nullable=True, since=5),
    RecordColumn("peak_memory_bytes", int, nullable=True, wide=True, since=5),
    RecordColumn("memory_source", str, nullable=True, since=5),
    RecordColumn("op_profile_json", str, since=5, before="[]"),
    RecordColumn("model_bytes", int, nullable=True, wide=True, since=6),  # the model file the agent ran
    # The output check, where the job asked for one: ok | wrong_answer | skipped, and the largest error.
    RecordColumn("output_check_status", str, nullable=True, size=16, since=6),
    RecordColumn("output_max_abs_error", float, nullable=True, since=6),
)
# What the agent reports and the dataset leaves out, and why (a test holds the wire contract to this list).
NOT_STORED = {
    "ProfileResult.model_sha256": "the job's arch_id and model format name the model",
    "ProfileResult.samples_ms": "raw samples are on request for one profile, not kept per record",
    "ProfileResult.measurement_wall_ms": "started/finished_unix_ns bound the measurement",
    "ProfileResult.warmup_runs_done": "the protocol parameters say how many warm-up runs were asked",
    "ProfileResult.input_shapes": "kept as input_shape_json: the first input's dimensions",
    "PowerReport.window_s": "the timed window; energy_per_inference_mj is normalised by it",
    "ProfileResult.outputs": "the output check's sampled values: the record keeps its verdict (output_check_status, "
                             "output_max_abs_error)",
    "PowerReport.energy_j": "the window's total; energy_per_inference_mj is what compares across records",
}
_POWER_FIELD = {column: name for name, column in POWER_COLUMNS.items()}
OUTPUT_CHECK_STATES = ("ok", "wrong_answer", "skipped")
_POWER_FIGURES = ("mean_power_w", "energy_per_inference_mj", "sampling_period_s", "idle_power_w")


class InvalidRecord(ValueError):
    """A measurement that cannot be true (a negative, infinite or NaN figure, a name that is not a name).

    Raised when the record is made, so nothing that enters the store (from an agent, an import or a
    table) can hold it: a job whose agent reported it fails that attempt with this message instead.
    """


def _figure(name: str, value: Any, positive: bool = False, optional: bool = False) -> None:
    """``value`` is a finite number, >= 0 (> 0 where ``positive``), or None where ``optional``."""
    if value is None and optional:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise InvalidRecord(f"{name} must be a finite number {bound}, got {value!r}")


def _finite_values(name: str, values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidRecord(f"{name}[{key!r}] must be a finite number, got {value!r}")


def _to_json(value: Any) -> str:
    """A mapping with sorted keys; a sequence as a list (of plain dicts where it holds mappings)."""
    if isinstance(value, Mapping):
        return json.dumps(dict(value), sort_keys=True)
    return json.dumps([dict(v) if isinstance(v, Mapping) else v for v in value])


@dataclass(frozen=True)
class MeasurementRecord:
    """One measurement, long-form: what the dataset is built from, stored as one row of ``RECORD_COLUMNS``.

    Built from an agent's ProfileResult by the fleet (``campaign.to_record``) or by an importer. ``to_row``
    gives the store's ``measurements`` row and ``from_row`` reads one back; measured objectives name one of
    its columns (``value``). A test checks each of these, and the wire contract's fields, against this class.
    """

    job_key: str
    arch_id: str
    device_key: str
    backend: str
    protocol: str
    protocol_params: Mapping[str, float]
    batch_size: int
    input_shape: list[int]
    latency_ms: float
    stats: Mapping[str, float]  # STAT_COLUMNS; empty for imported tables that publish only the headline
    agent_name: str
    agent_version: str
    started_unix_ns: int
    finished_unix_ns: int
    queue_wait_ms: float = 0.0
    protocol_details: Mapping[str, float] = field(default_factory=dict)
    power: Mapping[str, Any] = field(default_factory=lambda: {"available": False})  # PowerReport's fields
    environment: Mapping[str, Any] = field(default_factory=dict)
    replayed: bool = False
    model_format: str = "onnx"
    warnings: tuple[str, ...] = ()  # what the agent saw that may have disturbed the measurement
    # Cold start and memory as the runtime or tool reports them; None where it does not.
    load_ms: float | None = None
    first_inference_ms: float | None = None
    peak_memory_bytes: int | None = None
    memory_source: str | None = None
    op_profile: tuple[Mapping[str, Any], ...] = ()  # {name, op_type, time_ms} per op, when asked for
    model_bytes: int | None = None  # the size of the model file the agent ran; None where not reported
    output_check_status: str | None = None  # ok | wrong_answer | skipped; None: not asked
    output_max_abs_error: float | None = None
    recorded_at_unix_s: float | None = None  # set by the store when the record is written

    def __post_init__(self) -> None:
        """Refuse what cannot be a measurement, naming the field (``InvalidRecord``)."""
        try:
            names.device_key(self.device_key)
            names.agent_name(self.agent_name)
        except names.InvalidName as exc:
            raise InvalidRecord(str(exc)) from None
        _figure("latency_ms", self.latency_ms, positive=True)
        for stat, value in self.stats.items():
            _figure(f"stats.{stat}", value)
        for name in ("queue_wait_ms", "started_unix_ns", "finished_unix_ns"):
            _figure(name, getattr(self, name))
        if self.finished_unix_ns < self.started_unix_ns:
            raise InvalidRecord(f"finished_unix_ns ({self.finished_unix_ns}) is before started_unix_ns "
                                f"({self.started_unix_ns})")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise InvalidRecord(f"batch_size must be a whole number >= 1, got {self.batch_size!r}")
        for name in ("load_ms", "first_inference_ms", "peak_memory_bytes", "model_bytes"):
            _figure(name, getattr(self, name), optional=True)
        if self.power.get("available"):
            for name in _POWER_FIGURES:
                _figure(f"power.{name}", self.power.get(name), optional=True)
        _finite_values("protocol_params", self.protocol_params)
        _finite_values("protocol_details", self.protocol_details)
        if self.output_check_status not in (None, *OUTPUT_CHECK_STATES):
            raise InvalidRecord(f"output_check_status must be one of {list(OUTPUT_CHECK_STATES)}, got "
                                f"{self.output_check_status!r}")
        _figure("output_max_abs_error", self.output_max_abs_error, optional=True)
        for k, op in enumerate(self.op_profile):
            _figure(f"op_profile[{k}].time_ms", op.get("time_ms"))

    def to_row(self, now: float) -> dict[str, Any]:
        """The ``measurements`` row (without its id), in ``RECORD_COLUMNS`` order; power figures only where
        power was available, and ``now`` as the time recorded unless the record already has one."""
        available = bool(self.power.get("available"))
        parts = {name: self.stats.get(name) for name in STAT_COLUMNS}
        parts.update({column: self.power.get(name) if available else None for column, name in _POWER_FIELD.items()})
        parts.update(power_available=available, power_source=self.power.get("source") or None,
                     power_unavailable_reason=self.power.get("unavailable_reason") or None,
                     protocol_params_json=params_json(self.protocol_params),
                     recorded_at_unix_s=self.recorded_at_unix_s if self.recorded_at_unix_s is not None else now)
        row = {}
        for column in RECORD_COLUMNS:
            if column.name in parts:
                row[column.name] = parts[column.name]
            elif column.name.endswith("_json"):
                row[column.name] = _to_json(getattr(self, column.attribute))
            else:
                row[column.name] = getattr(self, column.name)
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> MeasurementRecord:
        """A record from a ``measurements`` row with typed values (the store's, or an export's once typed)."""
        available = bool(row["power_available"])
        power: dict[str, Any] = {"available": available, "source": row["power_source"] or "",
                                 "unavailable_reason": row["power_unavailable_reason"] or ""}
        if available:
            power.update({name: row[column] for column, name in _POWER_FIELD.items() if name not in power})
        values: dict[str, Any] = {"stats": {k: row[k] for k in STAT_COLUMNS if row[k] is not None}, "power": power}
        sequences = {f.name for f in fields(cls) if str(f.type).startswith("tuple")}
        for column in RECORD_COLUMNS:
            if column.name in STAT_COLUMNS or column.name in _POWER_FIELD:
                continue
            value = row[column.name]
            if column.name.endswith("_json"):
                value = json.loads(value)
            if column.attribute in sequences:
                value = tuple(value)
            elif column.kind is bool:
                value = bool(value)
            elif column.kind is str and column.nullable:
                value = value or None
            values[column.attribute] = value
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The record's fields as plain JSON values (what ``hwnas profile --json`` prints as ``record``)."""
        return json.loads(json.dumps(asdict(self)))

    def value(self, column: str) -> float | None:
        """A figure by its column name (a measured objective's ``record_field``); None if not measured."""
        value = self.to_row(0.0)[column]
        return None if value is None else float(value)


HEARTBEAT_S = 5.0  # how often a dial-out agent heartbeats (more often only under a lease shorter than 20 s)
MISSED_HEARTBEATS = 3  # an agent silent for this many heartbeat intervals is stale


def heartbeat_interval_s(lease_s: float) -> float:
    """The heartbeat interval the controller asks of dial-out agents: 5 s, or a quarter of a shorter lease.

    Short so that a stopped agent is seen stale within seconds, whatever the lease (120 s by default).
    """
    return min(HEARTBEAT_S, lease_s / 4)


@dataclass(frozen=True)
class RegisteredAgent:
    """An agent that dialled in, as the store last saw it."""

    agent_id: str
    device_key: str
    name: str
    version: str
    peer: str
    backends: str
    registered_at_unix_s: float
    last_seen_at_unix_s: float
    lease_s: float

    def healthy(self, now: float) -> bool:
        """Heard from within the last few heartbeat intervals; otherwise stale (stopped, or cut off)."""
        return now - self.last_seen_at_unix_s <= MISSED_HEARTBEATS * heartbeat_interval_s(self.lease_s) + 1.0
