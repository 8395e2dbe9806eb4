"""Client for one device agent: upload a model if the agent lacks it, then profile it.

The rest of the controller (fleet, campaigns, searches) talks to agents only
through this class. gRPC failures come back as ``AgentCallError`` carrying the
status code and the agent's message, so callers can tell a bad model from a
dead link.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hwnas.controller.reporting.tables import clip
from hwnas.protos.auth import ClientTls, call_metadata, explain_connect_failure, open_channel
from hwnas.protos.hwnas.v1 import agent_pb2, agent_pb2_grpc

CHUNK_BYTES = 1 << 20  # the contract's cap per upload chunk


DEADLINE_GRACE_S = 5.0  # how long past a profile's deadline the controller waits for the agent's own answer


class AgentCallError(Exception):
    """An RPC to an agent failed; ``code`` is the gRPC status code."""

    def __init__(self, address: str, method: str, code: grpc.StatusCode, details: str) -> None:
        details = clip(details)
        super().__init__(f"{method} on {address} failed: {code.name}: {details}")
        self.address = address
        self.method = method
        self.code = code
        self.details = details


@dataclass(frozen=True)
class ProfileSpec:
    """How to profile a model: backend and protocol, shapes, threads, warm-up, samples, deadline.

    The one place a ``ProfileRequest`` is built, whether a worker dials the agent or the agent dials in
    (the gateway hands it the same request). ``None`` warm-up fields leave the protocol's default.
    """

    backend: str = "onnxruntime"
    protocol: str = "latbench"
    protocol_params: Mapping[str, float] = field(default_factory=dict)
    batch_size: int = 0  # for a dynamic batch dimension; 0: the model's own
    input_shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    threads: int = 0
    warmup_runs: int | None = None
    warmup_seconds: float | None = None
    return_samples: bool = False
    deadline_seconds: float = 0.0
    op_profile: bool = False  # the runtime's own per-op profile (onnxruntime, openvino, tool backends)
    memory: bool = False  # the model's own footprint in a fresh process, where the runtime reports none
    output_check: bool = False  # the outputs on the check's seeded input, for ``fleet.output_check``

    def request(self, model_sha256: str) -> agent_pb2.ProfileRequest:
        options = agent_pb2.ProfileOptions(
            batch_size=self.batch_size,
            input_shapes=[agent_pb2.TensorShape(name=k, dims=list(v)) for k, v in self.input_shapes.items()],
            threads=self.threads, protocol=self.protocol, protocol_params=dict(self.protocol_params),
            return_samples=self.return_samples, deadline_seconds=self.deadline_seconds, op_profile=self.op_profile,
            memory=self.memory, output_check=self.output_check)
        if self.warmup_runs is not None:
            options.warmup_runs = self.warmup_runs
        if self.warmup_seconds is not None:
            options.warmup_seconds = self.warmup_seconds
        return agent_pb2.ProfileRequest(model_sha256=model_sha256, backend=self.backend, options=options)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ProfileRecord:
    """One measurement as the agent reported it, plus what the client saw."""

    agent_address: str
    result: dict[str, Any]  # the ProfileResult with proto field names, defaults included
    round_trip_ms: float

    @property
    def latency_ms(self) -> float:
        return float(self.result["latency_ms"])

    @property
    def stats(self) -> dict[str, float]:
        return self.result["stats"]

    @property
    def power(self) -> dict[str, Any]:
        return self.result["power"]

    @property
    def overhead_ms(self) -> float:
        """Round trip minus the agent's own measurement wall time and queue wait."""
        return self.round_trip_ms - float(self.result["measurement_wall_ms"]) - float(self.result["queue_wait_ms"])

    def to_dict(self) -> dict[str, Any]:
        return {"agent_address": self.agent_address, "round_trip_ms": self.round_trip_ms, **self.result}


def message_dict(message: Message) -> dict[str, Any]:
    """A message as plain Python values, every field present, int64 kept as int (unlike proto JSON)."""
    out: dict[str, Any] = {}
    for descriptor in message.DESCRIPTOR.fields:
        value = getattr(message, descriptor.name)
        if descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
            out[descriptor.name] = dict(value)
        elif descriptor.is_repeated:
            out[descriptor.name] = [message_dict(v) if isinstance(v, Message) else v for v in value]
        elif descriptor.message_type is not None:
            out[descriptor.name] = message_dict(value)
        else:
            out[descriptor.name] = value
    return out


class AgentClient:
    """One agent's DeviceAgent service. Plaintext only to loopback addresses; TLS otherwise."""

    def __init__(self, address: str, timeout_s: float = 30.0, tls: ClientTls | None = None,
                 token: str | None = None) -> None:
        self.address = address
        self.timeout_s = timeout_s
        self.tls = tls
        self._channel = open_channel(address, tls)
        self._metadata = call_metadata(token)
        self._stub = agent_pb2_grpc.DeviceAgentStub(self._channel)

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: str, request, timeout: float | None = None):
        try:
            return getattr(self._stub, method)(request, timeout=timeout or self.timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise AgentCallError(self.address, method, exc.code(), exc.details() or "") from exc

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Block until the channel connects; raise AgentCallError(UNAVAILABLE) otherwise."""
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError as exc:
            raise AgentCallError(self.address, "connect", grpc.StatusCode.UNAVAILABLE,
                                 f"no agent answered within {timeout_s:g} s: {self._why_not_connected()}") from exc

    def _why_not_connected(self) -> str:
        """One call that does not wait for the channel: its error names a TLS mismatch, a refusal, ..."""
        try:
            health_pb2_grpc.HealthStub(self._channel).Check(health_pb2.HealthCheckRequest(), timeout=3.0,
                                                            wait_for_ready=False)
        except grpc.RpcError as exc:
            return explain_connect_failure(exc.details() or "", self.address, self.tls)
        return "it answers now"

    def health(self, timeout_s: float = 3.0) -> str:
        """The agent's grpc.health.v1 status name (SERVING, NOT_SERVING), or 'unreachable (CODE)'."""
        stub = health_pb2_grpc.HealthStub(self._channel)
        try:
            status = stub.Check(health_pb2.HealthCheckRequest(), timeout=timeout_s).status
        except grpc.RpcError as exc:
            return f"unreachable ({exc.code().name})"
        return health_pb2.HealthCheckResponse.ServingStatus.Name(status)

    def device_info(self) -> agent_pb2.DeviceInfo:
        return self._call("GetDeviceInfo", agent_pb2.GetDeviceInfoRequest())

    def has_model(self, sha256: str) -> bool:
        return self._call("HasModel", agent_pb2.HasModelRequest(sha256=sha256)).present

    def upload(self, model: bytes, model_format: str = "onnx", sha256: str | None = None) -> str:
        """Stream ``model`` in chunks of at most 1 MiB; returns its sha256."""
        digest = sha256 or sha256_hex(model)

        def chunks() -> Iterator[agent_pb2.UploadModelChunk]:
            header = agent_pb2.UploadHeader(sha256=digest, size_bytes=len(model), format=model_format)
            yield agent_pb2.UploadModelChunk(header=header)
            for start in range(0, len(model), CHUNK_BYTES):
                yield agent_pb2.UploadModelChunk(data=model[start : start + CHUNK_BYTES])

        try:
            self._stub.UploadModel(chunks(), timeout=max(self.timeout_s, len(model) / 1e6), metadata=self._metadata)
        except grpc.RpcError as exc:
            raise AgentCallError(self.address, "UploadModel", exc.code(), exc.details() or "") from exc
        return digest

    def ensure_model(self, model: bytes, model_format: str = "onnx") -> tuple[str, bool]:
        """Upload only when the agent lacks these bytes; returns (sha256, uploaded)."""
        digest = sha256_hex(model)
        if self.has_model(digest):
            return digest, False
        self.upload(model, model_format, digest)
        return digest, True

    def profile(self, model_sha256: str, spec: ProfileSpec | None = None, *, timeout_s: float | None = None,
                **options: Any) -> ProfileRecord:
        """Profile a model the agent already holds (see ``ensure_model``), as ``spec`` says, or as the
        ``ProfileSpec`` fields given as keywords say (``client.profile(sha, protocol="fixed")``)."""
        if spec is not None and options:
            raise TypeError("give a ProfileSpec or its fields as keywords, not both")
        spec = spec or ProfileSpec(**options)
        request = spec.request(model_sha256)
        deadline_s = spec.deadline_seconds
        if timeout_s is None and deadline_s > 0:  # the controller's own deadline, for runtimes that ignore theirs
            timeout_s = deadline_s + DEADLINE_GRACE_S
        t0 = time.perf_counter()
        try:
            result = self._call("Profile", request, timeout=timeout_s or max(self.timeout_s, 600.0))
        except AgentCallError as exc:
            if exc.code == grpc.StatusCode.DEADLINE_EXCEEDED and deadline_s > 0 and not exc.details.startswith(
                    "measurement passed its deadline"):
                raise AgentCallError(self.address, "Profile", exc.code,
                                     f"no answer within the {deadline_s:g} s deadline and {DEADLINE_GRACE_S:g} s of "
                                     "grace: the controller stopped waiting (the agent's runtime may not be "
                                     "interruptible, and the agent may still be busy with it)") from exc
            raise
        round_trip_ms = (time.perf_counter() - t0) * 1e3
        return ProfileRecord(agent_address=self.address, result=message_dict(result), round_trip_ms=round_trip_ms)
