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


@dataclass(frozen=True)
class MeasurementRecord:
    """One measurement, long-form. Built from an agent's ProfileResult by the campaign runner."""

    job_key: str
    arch_id: str
    device_key: str
    backend: str
    protocol: str
    protocol_params: Mapping[str, float]
    batch_size: int
    input_shape: list[int]
    latency_ms: float
    stats: Mapping[str, float]  # count, min_ms, mean_ms, median_ms, p90_ms, p99_ms, max_ms, std_ms
    agent_name: str
    agent_version: str
    started_unix_ns: int
    finished_unix_ns: int
    queue_wait_ms: float = 0.0
    protocol_details: Mapping[str, float] = field(default_factory=dict)
    power: Mapping[str, Any] = field(default_factory=lambda: {"available": False})
    environment: Mapping[str, Any] = field(default_factory=dict)
    replayed: bool = False
    model_format: str = "onnx"
    warnings: tuple[str, ...] = ()  # what the agent saw that may have disturbed the measurement


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
