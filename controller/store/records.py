"""The plain values the store takes and gives: job specs, leased jobs, measurement records."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def params_json(params: Mapping[str, float]) -> str:
    return json.dumps(dict(sorted(params.items())), separators=(",", ":"))


def make_job_key(arch_id: str, device_key: str, backend: str, protocol: str, params: Mapping[str, float],
                 batch_size: int, model_format: str = "onnx") -> str:
    """The identity of one measurement: the same arch on the same device by the same protocol is one job.

    The model format joins the key only when it is not ONNX, so keys made before formats existed still match.
    """
    digest = hashlib.sha256(params_json(params).encode()).hexdigest()[:12]
    fmt = "" if model_format == "onnx" else f"|{model_format}"
    return f"{arch_id}|{device_key}|{backend}{fmt}|{protocol}:{digest}|b{batch_size}"


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

    @property
    def job_key(self) -> str:
        return make_job_key(self.arch_id, self.device_key, self.backend, self.protocol, self.protocol_params,
                            self.batch_size, self.model_format)


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


STAT_COLUMNS = ("count", "min_ms", "mean_ms", "median_ms", "p90_ms", "p99_ms", "max_ms", "std_ms")
# The agent's PowerReport field -> its column. Fields with a unit in their name keep it; the others say "power".
POWER_COLUMNS = {"available": "power_available", "source": "power_source", "mean_power_w": "mean_power_w",
                 "energy_per_inference_mj": "energy_per_inference_mj", "unavailable_reason": "power_unavailable_reason",
                 "sampling_period_s": "power_sampling_period_s", "idle_power_w": "idle_power_w"}
# What the agent reports and the dataset leaves out, and why (a test holds the wire contract to this list).
NOT_STORED = {
    "ProfileResult.model_sha256": "the job's arch_id and model format name the model",
    "ProfileResult.samples_ms": "raw samples are on request for one profile, not kept per record",
    "ProfileResult.measurement_wall_ms": "started/finished_unix_ns bound the measurement",
    "ProfileResult.warmup_runs_done": "the protocol parameters say how many warm-up runs were asked",
    "ProfileResult.input_shapes": "kept as input_shape_json: the first input's dimensions",
    "PowerReport.window_s": "the timed window; energy_per_inference_mj is normalised by it",
    "PowerReport.energy_j": "the window's total; energy_per_inference_mj is what compares across records",
}


@dataclass(frozen=True)
class MeasurementRecord:
    """One measurement, long-form: the one definition the dataset is built from.

    Built from an agent's ProfileResult by the fleet (``campaign.to_record``) or by an importer. ``to_row``
    gives the store's ``measurements`` row and ``from_row`` reads one back; the export's column types come
    from that table, and measured objectives name one of its columns (``value``). A test checks each of
    these, and the wire contract's fields, against this class.
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
    recorded_at_unix_s: float | None = None  # set by the store when the record is written

    def to_row(self, now: float) -> dict[str, Any]:
        """The ``measurements`` row (without its id); power figures only where power was available."""
        power = self.power
        available = bool(power.get("available"))
        power_row = {column: (power.get(name) if available else None) for name, column in POWER_COLUMNS.items()}
        power_row.update(power_available=available, power_source=power.get("source") or None,
                         power_unavailable_reason=power.get("unavailable_reason") or None)
        return {
            "job_key": self.job_key, "arch_id": self.arch_id, "device_key": self.device_key, "backend": self.backend,
            "model_format": self.model_format, "protocol": self.protocol,
            "protocol_params_json": params_json(self.protocol_params),
            "protocol_details_json": json.dumps(dict(self.protocol_details), sort_keys=True),
            "batch_size": self.batch_size, "input_shape_json": json.dumps(list(self.input_shape)),
            "latency_ms": self.latency_ms, **{k: self.stats.get(k) for k in STAT_COLUMNS}, **power_row,
            "environment_json": json.dumps(dict(self.environment), sort_keys=True),
            "agent_name": self.agent_name, "agent_version": self.agent_version, "queue_wait_ms": self.queue_wait_ms,
            "started_unix_ns": self.started_unix_ns, "finished_unix_ns": self.finished_unix_ns,
            "recorded_at_unix_s": self.recorded_at_unix_s if self.recorded_at_unix_s is not None else now,
            "replayed": self.replayed, "warnings_json": json.dumps(list(self.warnings)),
            "load_ms": self.load_ms, "first_inference_ms": self.first_inference_ms,
            "peak_memory_bytes": self.peak_memory_bytes, "memory_source": self.memory_source,
            "op_profile_json": json.dumps([dict(op) for op in self.op_profile]),
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> MeasurementRecord:
        """A record from a ``measurements`` row with typed values (the store's, or an export's once typed)."""
        available = bool(row["power_available"])
        power: dict[str, Any] = {"available": available, "source": row["power_source"] or "",
                                 "unavailable_reason": row["power_unavailable_reason"] or ""}
        if available:
            power.update({name: row[column] for name, column in POWER_COLUMNS.items() if name not in power})
        return cls(
            job_key=row["job_key"], arch_id=row["arch_id"], device_key=row["device_key"], backend=row["backend"],
            protocol=row["protocol"], protocol_params=json.loads(row["protocol_params_json"]),
            batch_size=row["batch_size"], input_shape=json.loads(row["input_shape_json"]),
            latency_ms=row["latency_ms"], stats={k: row[k] for k in STAT_COLUMNS if row[k] is not None},
            agent_name=row["agent_name"], agent_version=row["agent_version"],
            started_unix_ns=row["started_unix_ns"], finished_unix_ns=row["finished_unix_ns"],
            queue_wait_ms=row["queue_wait_ms"], protocol_details=json.loads(row["protocol_details_json"]),
            power=power, environment=json.loads(row["environment_json"]), replayed=bool(row["replayed"]),
            model_format=row["model_format"], warnings=tuple(json.loads(row["warnings_json"])),
            load_ms=row["load_ms"], first_inference_ms=row["first_inference_ms"],
            peak_memory_bytes=row["peak_memory_bytes"], memory_source=row["memory_source"] or None,
            op_profile=tuple(json.loads(row["op_profile_json"])), recorded_at_unix_s=row["recorded_at_unix_s"],
        )

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
