"""The fleet's workers: one per agent this controller dials, leasing its device key's jobs through the key's
scheduler, measuring them and recording the results; and the leases they hold, renewed and given back."""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence

import grpc

from hwnas.controller.fleet.agents import AgentEndpoint, Connect
from hwnas.controller.fleet.campaign import check_outputs, job_profile, to_record
from hwnas.controller.fleet.client import AgentCallError, AgentClient, ProfileRecord
from hwnas.controller.fleet.models import ModelKey, ModelSource
from hwnas.controller.fleet.scheduler import DeviceScheduler, Scheduler
from hwnas.controller.graph.model_formats import model_format
from hwnas.controller.store import InvalidRecord, Job, Store, StoreUnavailable

log = logging.getLogger("hwnas.worker")

# An agent's verdict on the model or request: retrying elsewhere would fail the same way.
PERMANENT = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OUT_OF_RANGE}


# The agent, not the job, is the problem: give the job back without spending an attempt, unless the agent
# went away during the job's measurement (``died_measuring``).
AGENT_DOWN = {grpc.StatusCode.UNAVAILABLE}
# How gRPC says that no connection could be opened, as opposed to one that broke while a call was in it.
_NEVER_CONNECTED = ("failed to connect", "connection refused", "name resolution")


def died_measuring(exc: AgentCallError) -> bool:
    """The agent went away while it was measuring the job (killed, out of memory): the job may be why, so
    that attempt counts. An agent that could not be reached at all, or failed during an upload, is the
    agent's problem alone."""
    details = exc.details.lower()
    return (exc.code in AGENT_DOWN and exc.method == "Profile"
            and not any(text in details for text in _NEVER_CONNECTED))


# The agent is busy (its RPC slots or cache are full): give the job back and back off before the next lease.
BUSY = {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED}


class LeaseRenewer:
    """Extends the leases of every worker of one campaign run, every third of the lease, in one statement.

    One thread for all workers instead of one per job: a job's lease outlives a slow measurement, and the
    dispatch path creates no thread per job.
    """

    def __init__(self, store: Store, owners: Sequence[str], lease_s: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(store, list(owners), lease_s), daemon=True,
                                        name="lease-renewer")
        self._thread.start()

    def _run(self, store: Store, owners: list[str], lease_s: float) -> None:
        while not self._stop.wait(lease_s / 3):
            try:
                store.renew_owners(owners, lease_s)
            except StoreUnavailable as exc:  # a full or locked dataset: the workers stop on their next write
                log.warning("renewing leases failed: %s", exc)
            except Exception:  # a busy or briefly unreachable database: the next round tries again
                log.exception("renewing leases failed")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class WorkSignal:
    """Wakes idle workers of a long-lived fleet when jobs are submitted, without polling the store."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.generation = 0

    def notify(self) -> None:
        with self._cond:
            self.generation += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout_s: float | None, stop: threading.Event) -> None:
        """Return once a submission after generation ``seen`` happened, ``timeout_s`` passed, or ``stop``."""
        with self._cond:
            self._cond.wait_for(lambda: self.generation != seen or stop.is_set(), timeout_s)


class AgentWorker:
    """Drains its device key's queue through one agent."""

    def __init__(self, store: Store, endpoint: AgentEndpoint, lease_s: float, stop: threading.Event,
                 on_done: Callable[[str, str], None], connect: Connect = AgentClient,
                 models: ModelSource | None = None, profile_timeout_s: float = 3600.0,
                 scheduler: Scheduler | None = None, work: WorkSignal | None = None,
                 on_settled: Callable[[], None] = lambda: None, on_idle: Callable[[], None] = lambda: None) -> None:
        """A worker of a long-lived fleet: it stays up when the queue is empty and wakes when ``work`` is
        signalled (more was submitted); it stops when ``stop`` is set. Every decision of policy (which job,
        the host's turn, backing off a busy agent) is its device key's scheduler's."""
        self.store, self.endpoint, self.lease_s, self.stop = store, endpoint, lease_s, stop
        self.work = work or WorkSignal()
        self.on_settled, self.on_idle = on_settled, on_idle  # a job settled; nothing to lease
        self.schedule: DeviceScheduler = (scheduler or Scheduler(store)).for_key(endpoint.device_key)
        self._placed = False  # the scheduler knows the agent's host once the agent has said which it is
        self.connect = connect
        self.models = models or ModelSource(store)
        self.on_done = on_done
        self.profile_timeout_s = profile_timeout_s
        self.owner = worker_owner(endpoint.address)
        self.uploaded: set[str] = set()

    def _work_left(self) -> tuple[int, int]:
        counts = self.store.counts().get(self.endpoint.device_key, {})
        return counts.get("queued", 0), counts.get("leased", 0)

    def run(self) -> None:
        with self.connect(self.endpoint.address) as client:
            job = None
            while not self.stop.is_set():
                seen = self.work.generation
                if job is None and not self.schedule.may_lease(self.owner):  # backing off, or quarantined
                    self.stop.wait(self.schedule.wait_s(self.owner) or self.lease_s / 4)
                    continue
                job = job or self.schedule.lease(self.owner, self.lease_s)
                if job is None:
                    self.on_idle()
                    in_flight = self._work_left()[1]
                    if in_flight:
                        self.store.requeue_expired()  # in-flight work elsewhere may have lost its worker
                    # until more is submitted (or, with work in flight elsewhere, until its lease may lapse)
                    self.work.wait(seen, self.lease_s / 4 if in_flight else None, self.stop)
                    continue
                done, job = self._run_job(client, job)
                self.on_settled()
                if not done:
                    self._wait_for_agent(client)

    def _wait_for_agent(self, client: AgentClient) -> None:
        """Lease nothing until the agent answers again, or until the key's work is finished by others."""
        delay = 0.5
        while not self.stop.is_set() and any(self._work_left()):
            try:
                client.wait_ready(delay)
                log.info("agent %s is back", self.endpoint.address)
                return
            except AgentCallError:
                self.store.requeue_expired()
                delay = min(delay * 2, 10.0)

    def _run_job(self, client: AgentClient, job: Job) -> tuple[bool, Job | None]:
        """Measure and record one job; (False, None) when the agent stopped answering (the job went back).

        After a success the next job comes leased with the record, in one transaction.
        """
        try:
            profile = self._profile(client, job)
        except AgentCallError as exc:
            reason = f"{exc.code.name} from {self.endpoint.address}: {exc.details}"
            if died_measuring(exc):
                state = self.store.fail(job, f"the agent died during this measurement ({reason})", permanent=False)
                log.warning("agent %s went away measuring %s; the attempt counts -> %s", self.endpoint.address,
                            job.arch_id[:12], state)
                return False, None
            if exc.code in AGENT_DOWN:
                self.store.give_back(job, reason)
                log.warning("agent %s is unreachable; job %s goes back to the queue", self.endpoint.address,
                            job.arch_id[:12])
                return False, None
            if exc.code in BUSY:
                self.store.give_back(job, reason)
                wait_s = self.schedule.busy(self.owner)
                log.warning("agent %s is busy (%s); job %s goes back to the queue, next lease in %.1f s",
                            self.endpoint.address, exc.details, job.arch_id[:12], wait_s)
                return True, None
            state = self.store.fail(job, reason, permanent=exc.code in PERMANENT)
            log.warning("%s on %s: %s -> %s", job.arch_id[:12], self.endpoint.address, exc, state)
            return True, None
        except Exception as exc:  # the model could not be built: retrying cannot help
            log.exception("job %s failed in the controller", job.job_key)
            self.store.fail(job, f"{type(exc).__name__}: {exc}", permanent=True)
            return True, None
        try:
            record = to_record(job, profile.result, check_outputs(job, profile.result, self.models))
        except InvalidRecord as exc:  # the agent's figures cannot be true: that attempt failed, nothing is stored
            state = self.store.fail(job, f"invalid result from {self.endpoint.address}: {exc}", permanent=False)
            log.warning("%s on %s: invalid result (%s) -> %s", job.arch_id[:12], self.endpoint.address, exc, state)
            return True, None
        next_job = self.schedule.complete_and_lease(record, self.owner, self.lease_s,
                                                    follow=not self.stop.is_set())
        self.on_done(job.device_key, job.arch_id)
        return True, next_job

    def _profile(self, client: AgentClient, job: Job) -> ProfileRecord:
        sha = self.models.sha256(ModelKey.of(job))
        for attempt in (1, 2):
            if sha not in self.uploaded:
                if not client.has_model(sha):
                    client.upload(self.models.model(ModelKey.of(job)),
                                  model_format(job.model_format).wire_format, sha256=sha)
                self.uploaded.add(sha)
            if not self._placed:
                info = client.device_info()
                self.schedule.place(self.owner, f"{self.endpoint.device_key}={self.endpoint.address}", info.host_id,
                                    info.hostname)
                self._placed = True
            try:
                with self.schedule.measuring(self.owner):
                    return client.profile(sha, job_profile(job), timeout_s=self.profile_timeout_s)
            except AgentCallError as exc:
                if exc.code == grpc.StatusCode.NOT_FOUND and attempt == 1:
                    self.uploaded.discard(sha)  # the agent restarted with an empty cache: upload again
                    continue
                raise
        raise AssertionError("unreachable")


def release_leases(store: Store, workers: Sequence[AgentWorker]) -> None:
    """Give back the workers' leases; where the dataset cannot be written, the next run reclaims them."""
    try:
        for w in workers:
            store.release(w.owner)
    except StoreUnavailable as exc:
        log.warning("leases not given back (%s); the next run on this host reclaims them at once", exc)


def worker_owner(address: str) -> str:
    """A dialling worker's lease owner: host, process and agent, so a successor can tell it died."""
    return f"{socket.gethostname()}:{os.getpid()}:{address}"


def reclaim_from_dead_controllers(store: Store) -> int:
    """Leases held by controller processes of this host that no longer exist go back to the queue now.

    Without this a controller killed mid-job (SIGKILL, power loss of a laptop) holds its jobs until their
    lease expires; a re-run on the same host need not wait for that. Leases of other hosts, of live
    processes and of dial-out agents are left to expire.
    """
    host, reclaimed = socket.gethostname(), 0
    for job in store.leased():
        owner_host, _, rest = (job.lease_owner or "").partition(":")
        pid_text = rest.partition(":")[0]
        if owner_host != host or not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            reclaimed += store.give_back(job, f"its controller (pid {pid_text}) is gone")
        except PermissionError:
            continue  # alive, another user's
    return reclaimed
