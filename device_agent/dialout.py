"""The agent's dial-out link: for agents the controller cannot call (NAT, firewalls, Wi-Fi).

The agent registers its device key with the controller, heartbeats from a thread of its own (so a long
measurement keeps its lease), long-polls for jobs, downloads the models it lacks into its cache and
reports every outcome. It survives the controller going away: calls are retried with capped backoff,
a controller that no longer knows the agent (FAILED_PRECONDITION) gets a fresh registration, and a finished
result is kept and re-sent until the controller takes it. Measurements run through the same
``AgentServicer.execute`` as gRPC Profile calls, behind the same FIFO gate.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

import grpc

from hwnas.device_agent.errors import AgentError
from hwnas.device_agent.measure import StopToken
from hwnas.device_agent.server import AgentServicer
from hwnas.protos.auth import ClientTls, call_metadata, explain_connect_failure, open_channel
from hwnas.protos.hwnas.v1 import controller_pb2, controller_pb2_grpc

log = logging.getLogger("hwnas.agent.dialout")

LEASE_WAIT_S = 10.0  # long-poll length: a new job starts within POLL_S of being queued, not 10 s
MAX_BACKOFF_S = 10.0
REPORT_PERSIST_S = 120.0  # how long a finished result is re-sent to an unreachable controller
FOREVER = None


class ControllerLink:
    def __init__(self, servicer: AgentServicer, address: str, device_key: str, tls: ClientTls | None = None,
                 token: str | None = None, call_timeout_s: float = 30.0) -> None:
        self.servicer = servicer
        self.address = address
        self.device_key = device_key
        self.agent_id = uuid.uuid4().hex  # a restarted agent is a new registration
        self.call_timeout_s = call_timeout_s
        self._tls = tls
        self._channel = open_channel(address, tls)
        self._metadata = call_metadata(token)
        self._stub = controller_pb2_grpc.ControllerStub(self._channel)
        self._stop = threading.Event()
        self._token: StopToken | None = None
        self._registered = threading.Event()
        self.heartbeat_interval_s = 5.0
        self.jobs_done = 0
        self._job_id = 0  # the job being fetched, measured or reported; its lease rides on the heartbeats
        self._lease_lock = threading.Lock()
        self._lease_call: grpc.Future | None = None  # the long poll in flight, cancelled by stop()

    # -- plumbing ------------------------------------------------------------------------------------
    def _call(self, method: str, request, timeout_s: float | None = None):
        return getattr(self._stub, method)(request, timeout=timeout_s or self.call_timeout_s, metadata=self._metadata)

    def _retry(self, what: str, attempt: Callable[[], object], give_up: Callable[[], bool] | None = None):
        """Call until it succeeds; UNAVAILABLE and friends back off, FAILED_PRECONDITION re-registers first.

        Returns None once ``give_up()`` says so (default: when the link is stopping).
        """
        give_up = give_up or self._stop.is_set
        pause = self._stop if give_up == self._stop.is_set else threading.Event()  # the latter is never set
        delay = 0.2
        while not give_up():
            try:
                return attempt()
            except grpc.RpcError as exc:
                code = exc.code()
                if code == grpc.StatusCode.FAILED_PRECONDITION and what != "register":
                    log.info("the controller does not know this agent (%s); registering again", exc.details())
                    self._registered.clear()
                    self._register()
                    continue
                if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED,
                            grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNIMPLEMENTED,
                            grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                    raise  # retrying cannot fix a wrong token, key or controller
                log.warning("%s: %s from %s (%s); retrying in %.1f s", what, code.name, self.address,
                            explain_connect_failure(exc.details() or "", self.address, self._tls), delay)
                pause.wait(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
        return None

    def _register(self) -> None:
        def attempt():
            reply = self._call("Register", controller_pb2.RegisterRequest(
                agent_id=self.agent_id, device_key=self.device_key, device_info=self.servicer.device_info()))
            self.heartbeat_interval_s = reply.heartbeat_interval_s or self.heartbeat_interval_s
            return reply

        if self._retry("register", attempt) is not None:
            self._registered.set()
            log.info("registered with %s as %s (agent id %s)", self.address, self.device_key, self.agent_id[:8])

    # -- loops ---------------------------------------------------------------------------------------
    def _heartbeats(self) -> None:
        failing = False  # log a lost controller once, not every beat
        while not self._stop.wait(self.heartbeat_interval_s):
            if not self._registered.is_set():
                continue
            try:
                self._call("Heartbeat", controller_pb2.HeartbeatRequest(agent_id=self.agent_id, job_id=self._job_id),
                           timeout_s=self.heartbeat_interval_s)
                if failing:
                    log.info("heartbeats to %s go through again", self.address)
                failing = False
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.FAILED_PRECONDITION:
                    self._registered.clear()  # the job loop re-registers on its next call
                elif not failing:
                    log.warning("heartbeat to %s failed: %s; still trying", self.address, exc.code().name)
                failing = True

    def run(self) -> None:
        """Serve jobs until ``stop()``; raises grpc.RpcError for refusals retrying cannot fix (a wrong token)."""
        self._register()
        beat = threading.Thread(target=self._heartbeats, name="hwnas-heartbeat", daemon=True)
        beat.start()
        try:
            while not self._stop.is_set():
                if not self._registered.is_set():
                    self._register()
                    continue
                reply = self._retry("lease", self._lease)
                if reply is not None and reply.job_id:
                    self._job_id = reply.job_id
                    try:
                        self._run_job(reply)
                    finally:
                        self._job_id = 0
        finally:
            self._stop.set()
            beat.join()
            self._channel.close()

    def _lease(self) -> controller_pb2.LeaseJobResponse | None:
        """One long poll for a job; None when ``stop`` cancelled it."""
        call = self._stub.LeaseJob.future(
            controller_pb2.LeaseJobRequest(agent_id=self.agent_id, wait_seconds=LEASE_WAIT_S),
            timeout=LEASE_WAIT_S + self.call_timeout_s, metadata=self._metadata)
        with self._lease_lock:
            self._lease_call = call
        if self._stop.is_set():  # stopped between the loop's check and the call
            call.cancel()
        try:
            return call.result()
        except grpc.FutureCancelledError:
            return None
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED and self._stop.is_set():
                return None
            raise
        finally:
            with self._lease_lock:
                self._lease_call = None

    def stop(self) -> None:
        """Stop asking for work, ending a long poll in flight (an idle agent exits at once, not when the poll
        runs out); a running measurement is aborted by the servicer's shutdown, not here."""
        self._stop.set()
        with self._lease_lock:
            if self._lease_call is not None:
                self._lease_call.cancel()

    # -- one job -------------------------------------------------------------------------------------
    def _fetch(self, sha: str) -> None:
        def attempt():
            chunks = self._stub.FetchModel(controller_pb2.FetchModelRequest(agent_id=self.agent_id, sha256=sha),
                                           timeout=self.call_timeout_s + 60.0, metadata=self._metadata)
            return self.servicer.store_model(chunks)

        self._retry("fetch model", attempt)

    def _run_job(self, lease: controller_pb2.LeaseJobResponse) -> None:
        request = lease.request
        outcome: dict[str, object]
        try:
            if self.servicer.cache.size_of(request.model_sha256) is None:
                self._fetch(request.model_sha256)
                if self._stop.is_set():
                    return  # the lease expires and the job goes back to the queue
        except grpc.RpcError as exc:
            log.warning("job %d: cannot fetch its model (%s: %s); leaving it to expire", lease.job_id,
                        exc.code().name, exc.details())
            return
        try:
            token = StopToken()
            result = self.servicer.execute(request, token, deadline=FOREVER, cancelled=self._stop.is_set)
            outcome = {"result": result}
        except AgentError as exc:
            message = self.servicer.public(str(exc))
            outcome = {"failure": controller_pb2.JobFailure(code=exc.status_code, message=message)}
        except Exception as exc:  # a runtime failing mid-measurement
            log.exception("job %d failed", lease.job_id)
            outcome = {"failure": controller_pb2.JobFailure(
                code="INTERNAL", message=f"measurement failed in {request.backend}: {exc}")}
        report = controller_pb2.ReportJobRequest(agent_id=self.agent_id, job_id=lease.job_id, **outcome)
        # A result is worth a lot of device time: keep re-sending it, even while stopping, for a while.
        deadline = time.monotonic() + REPORT_PERSIST_S
        try:
            reply = self._retry("report", lambda: self._call("ReportJob", report),
                                give_up=lambda: time.monotonic() > deadline)
        except grpc.RpcError as exc:
            log.error("job %d: the controller refused the report: %s: %s", lease.job_id, exc.code().name,
                      exc.details())
            return
        if reply is not None and "result" in outcome:
            self.jobs_done += 1
        log.info("job %d: %s", lease.job_id, "reported" if reply is not None else "report lost")

