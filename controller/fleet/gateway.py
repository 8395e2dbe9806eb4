"""The controller's gRPC service for agents that dial out (``hwnas-agent serve --controller HOST:PORT``).

An agent behind NAT cannot be called, so it calls: it registers its device key, heartbeats, long-polls
for jobs of its key, downloads models it lacks and reports each outcome. The gateway is a thin skin
over the store's queue, so dialled agents (``worker.AgentWorker``) and dialling agents share one
queue per device key, one lease per job and one record per job key, and the same scheduler
(``fleet.scheduler``) decides their leases, host turns and backoff. An agent that misses heartbeats
for ``lease_s`` stops renewing its job's lease; the reaper returns the job to the queue.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator

import grpc
from google.protobuf.json_format import MessageToDict
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from hwnas.controller.fleet.campaign import check_outputs, job_profile, to_record
from hwnas.controller.fleet.client import CHUNK_BYTES, message_dict
from hwnas.controller.fleet.models import ModelKey, ModelSource
from hwnas.controller.fleet.scheduler import Scheduler
from hwnas.controller.fleet.worker import AGENT_DOWN, BUSY, PERMANENT
from hwnas.controller.reporting.tables import clip
from hwnas.controller.store import InvalidRecord, Job, RegisteredAgent, Store, StoreUnavailable
from hwnas.controller.store.records import heartbeat_interval_s
from hwnas.protos import names
from hwnas.protos.auth import TlsFiles
from hwnas.protos.hwnas.v1 import agent_pb2, controller_pb2, controller_pb2_grpc
from hwnas.protos.listen import listen, new_server

log = logging.getLogger("hwnas.gateway")

SERVICE_NAME = controller_pb2.DESCRIPTOR.services_by_name["Controller"].full_name
_AGENT_ID = re.compile(r"[A-Za-z0-9_.:-]{8,64}")
POLL_S = 0.2  # how often a long-polling LeaseJob looks at the queue
MAX_AGENTS = 1024  # healthy registrations one controller serves; more are refused until some go stale
# The agent was stopping or its measurement was cut off: the job is fine, give it back without an attempt.
GIVE_BACK = {code.name for code in AGENT_DOWN | BUSY} | {"CANCELLED", "DEADLINE_EXCEEDED"}


class ControllerServicer(controller_pb2_grpc.ControllerServicer):
    def __init__(self, store: Store, models: ModelSource, scheduler: Scheduler, lease_s: float = 30.0,
                 on_done: Callable[[str, str], None] = lambda key, arch_id: None,
                 on_settled: Callable[[], None] = lambda: None, max_agents: int = MAX_AGENTS) -> None:
        self.store, self.models, self.lease_s, self.on_done = store, models, lease_s, on_done
        self.on_settled = on_settled  # a job was recorded, failed or given back (a fleet's waiters recheck)
        self.scheduler = scheduler  # who gets which job: shared with the fleet's own workers
        self.max_agents = max_agents
        self._leasing: set[str] = set()  # agents with a LeaseJob in flight: one at a time each
        self._leasing_lock = threading.Lock()

    # -- helpers -----------------------------------------------------------------------------------
    def _agent(self, agent_id: str, context: grpc.ServicerContext) -> RegisteredAgent:
        agent = self.store.agent(agent_id) if _AGENT_ID.fullmatch(agent_id) else None
        if agent is None:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"agent {agent_id!r} is not registered; call Register first")
        return agent

    def _request(self, job: Job) -> agent_pb2.ProfileRequest:
        return job_profile(job).request(self.models.sha256(ModelKey.of(job)))

    # -- RPCs --------------------------------------------------------------------------------------
    def Register(self, request, context):  # noqa: N802 - gRPC method name
        if not _AGENT_ID.fullmatch(request.agent_id):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "agent_id must be 8-64 characters of letters, digits and _.:-")
        info = request.device_info
        now = time.time()
        if self.store.agent(request.agent_id) is None:
            healthy = sum(agent.healthy(now) for agent in self.store.registered_agents())
            if healthy >= self.max_agents:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                              f"this controller serves at most {self.max_agents} agents and {healthy} are healthy; "
                              "try again when some stop (`hwnas fleet forget --stale` drops stopped ones)")
        for field, check, value in (("device_key", names.device_key, request.device_key),
                                    ("device_info.agent_name", names.agent_name, info.agent_name or info.hostname)):
            try:
                check(value)
            except names.InvalidName as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {exc}")
        self.store.register_agent(RegisteredAgent(
            agent_id=request.agent_id, device_key=request.device_key, name=info.agent_name or info.hostname,
            version=info.agent_version, peer=context.peer(), backends=",".join(info.backends),
            registered_at_unix_s=now, last_seen_at_unix_s=now, lease_s=self.lease_s,
        ), json.dumps(MessageToDict(info), sort_keys=True))
        self.scheduler.for_key(request.device_key).place(request.agent_id, f"{request.device_key}={info.agent_name}",
                                                          info.host_id, info.hostname)
        log.info("agent %s (%s) registered for %s from %s", info.agent_name, request.agent_id[:8],
                 request.device_key, context.peer())
        return controller_pb2.RegisterResponse(heartbeat_interval_s=heartbeat_interval_s(self.lease_s),
                                               lease_s=self.lease_s)

    def Heartbeat(self, request, context):  # noqa: N802
        kept = self.store.heartbeat(request.agent_id, request.job_id) if _AGENT_ID.fullmatch(request.agent_id) else None
        if kept is None:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"agent {request.agent_id!r} is not registered; call Register first")
        return controller_pb2.HeartbeatResponse(job_id=request.job_id if kept else 0)

    def LeaseJob(self, request, context):  # noqa: N802
        agent = self._agent(request.agent_id, context)
        if not 0 <= request.wait_seconds <= 60:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"wait_seconds must be within 0..60, got {request.wait_seconds:g}")
        with self._leasing_lock:
            if agent.agent_id in self._leasing:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                              f"agent {agent.agent_id[:8]} already has a LeaseJob in flight; one at a time")
            self._leasing.add(agent.agent_id)
        try:
            return self._lease_for(agent, request.wait_seconds, context)
        finally:
            with self._leasing_lock:
                self._leasing.discard(agent.agent_id)

    def _lease_for(self, agent: RegisteredAgent, wait_seconds: float, context) -> controller_pb2.LeaseJobResponse:
        """The agent's next job, long-polling up to ``wait_seconds``. An agent holds one lease: asking again
        while it holds one (its reply was lost) gives that job again rather than a second."""
        for job in self.store.leased(owner=agent.agent_id):
            reply = self._lease_reply(job)
            if reply is not None:
                return reply
        give_up = time.monotonic() + wait_seconds
        schedule = self.scheduler.for_key(agent.device_key)
        while context.is_active():
            # the controller cannot hold a host's turn over a measurement the agent runs: a job goes to an
            # agent only while no other agent of its host holds one
            job = schedule.lease(agent.agent_id, self.lease_s, gate_on_leases=True)
            if job is not None:
                reply = self._lease_reply(job)
                if reply is not None:
                    return reply
                continue  # that job's model cannot be built and it failed; the next one may
            if time.monotonic() >= give_up:
                break
            time.sleep(POLL_S)
        return controller_pb2.LeaseJobResponse()

    def _lease_reply(self, job: Job) -> controller_pb2.LeaseJobResponse | None:
        """The reply that hands ``job`` to its agent; None (the job failed) when its model cannot be built."""
        try:
            profile_request = self._request(job)
        except Exception as exc:  # the CG does not export: no agent could ever run it
            log.exception("job %s cannot be built", job.job_key)
            self.store.fail(job, f"model export failed: {type(exc).__name__}: {exc}", permanent=True)
            return None
        return controller_pb2.LeaseJobResponse(job_id=job.id, request=profile_request,
                                               model_size_bytes=len(self.models.model(ModelKey.of(job))))

    def FetchModel(self, request, context) -> Iterator[agent_pb2.UploadModelChunk]:  # noqa: N802
        agent = self._agent(request.agent_id, context)
        try:
            data = self.models.by_sha256(request.sha256)
        except KeyError:  # leased before a controller restart? this controller exports it again
            for job in self.store.leased():
                if job.lease_owner == agent.agent_id:
                    self.models.sha256(ModelKey.of(job))
            try:
                data = self.models.by_sha256(request.sha256)
            except KeyError:
                context.abort(grpc.StatusCode.NOT_FOUND, f"no model {request.sha256!r} is leased to this agent")
        yield agent_pb2.UploadModelChunk(header=agent_pb2.UploadHeader(
            sha256=request.sha256, size_bytes=len(data), format=self.models.wire_format(request.sha256)))
        for start in range(0, len(data), CHUNK_BYTES):
            yield agent_pb2.UploadModelChunk(data=data[start:start + CHUNK_BYTES])

    def ReportJob(self, request, context):  # noqa: N802
        agent = self._agent(request.agent_id, context)
        job = self.store.job(request.job_id)
        if job is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no job {request.job_id}")
        if job.device_key != agent.device_key:
            context.abort(grpc.StatusCode.PERMISSION_DENIED,
                          f"job {job.id} is for {job.device_key}, this agent serves {agent.device_key}")
        outcome = request.WhichOneof("outcome")
        if outcome is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a report needs a result or a failure")
        owned = Job(**{**vars(job), "lease_owner": agent.agent_id})  # the store checks the lease is still ours
        if outcome == "result":
            expected = self.models.sha256(ModelKey.of(job))
            if request.result.model_sha256 != expected:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              f"result is for model {request.result.model_sha256[:12]}, job {job.id} measures "
                              f"{expected[:12]}")
            try:
                result = message_dict(request.result)
                record = to_record(job, result, check_outputs(job, result, self.models))
            except InvalidRecord as exc:  # the attempt failed; the job is measured again, nothing is stored
                state = self.store.fail(owned, f"invalid result from {agent.name} ({agent.agent_id[:8]}): {exc}",
                                        permanent=False)
                log.warning("job %s: invalid result (%s) -> %s", job.arch_id[:12], exc, state)
                self.on_settled()
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid result: {exc}; job {job.id} is {state}")
            recorded = self.scheduler.for_key(agent.device_key).complete(record)
            if recorded:
                self.on_done(job.device_key, job.arch_id)
            self.on_settled()
            return controller_pb2.ReportJobResponse(recorded=recorded, job_state="done")
        failure = request.failure
        reason = f"{clip(failure.code, 40)} from {agent.name} ({agent.agent_id[:8]}): {clip(failure.message)}"
        if failure.code in {code.name for code in BUSY}:
            self.scheduler.for_key(agent.device_key).busy(agent.agent_id)
        if failure.code in GIVE_BACK:
            state = "queued" if self.store.give_back(owned, reason) else (self.store.job(job.id) or job).state
        else:
            state = self.store.fail(owned, reason, permanent=failure.code in {c.name for c in PERMANENT})
        log.warning("job %s: %s -> %s", job.arch_id[:12], reason, state)
        self.on_settled()
        return controller_pb2.ReportJobResponse(recorded=False, job_state=state)


class Gateway:
    """The running service: gRPC server (TLS unless loopback plaintext), health service, lease reaper."""

    def __init__(self, store: Store, address: str, tls: TlsFiles | None = None, token: str | None = None,
                 lease_s: float = 30.0, models: ModelSource | None = None,
                 on_done: Callable[[str, str], None] = lambda key, arch_id: None, max_workers: int = 128,
                 scheduler: Scheduler | None = None, on_settled: Callable[[], None] = lambda: None,
                 max_agents: int = MAX_AGENTS) -> None:
        """``scheduler``: the fleet's, when its own workers share the store (a default one decides alone)."""
        self.store = store
        self.servicer = ControllerServicer(store, models or ModelSource(store), scheduler or Scheduler(store),
                                           lease_s, on_done, on_settled, max_agents)
        self.server = new_server(max_workers, "hwnas-gateway", token,
                                 client_role="agent" if tls and tls.client_ca else None)
        controller_pb2_grpc.add_ControllerServicer_to_server(self.servicer, self.server)
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port = listen(self.server, address, tls)
        self.address = f"{address.rsplit(':', 1)[0]}:{self.port}"
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap, name="hwnas-gateway-reaper", daemon=True)

    def _reap(self) -> None:
        """Leases of agents that stopped heartbeating expire; their jobs go back to the queue."""
        while not self._stop.wait(max(0.2, self.servicer.lease_s / 4)):
            try:
                self.store.requeue_expired()
            except StoreUnavailable as exc:  # full, read-only or locked: said once per round, no traceback
                log.warning("requeueing expired leases failed: %s", exc)
            except Exception:  # a briefly unreachable database server: try again next round
                log.exception("requeueing expired leases failed")

    def start(self) -> Gateway:
        self.server.start()
        for service in ("", SERVICE_NAME):
            self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        self._reaper.start()
        return self

    def stop(self, grace_s: float = 2.0) -> None:
        self._stop.set()
        self.server.stop(grace=grace_s).wait()
