"""LatBench-style campaigns: measure many architectures on several device keys, durably.

The plan (architectures x device keys) becomes jobs in the store; one worker per agent leases jobs of
its device key, builds the model from the stored CG, uploads it once per agent (content hash), profiles
it and records the result. Several agents under one key share the key's queue. Everything a worker
does is re-doable: a lease that is not renewed expires and the job returns to the queue; a record is
keyed by the job, so a job measured twice still has one row. Re-running the same command resumes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import grpc
import tomllib

from controller.errors import SettingError
from controller.fleet.client import AgentCallError, AgentClient, ProfileRecord, ProfileSpec, sha256_hex
from controller.graph import ComputationGraph
from controller.graph.model_formats import format_for, identity, model_format
from controller.spaces import Candidate, SearchSpace
from controller.store import ArchRecord, Job, JobSpec, MeasurementRecord, Store, StoreUnavailable

log = logging.getLogger("hwnas.campaign")

# An agent's verdict on the model or request: retrying elsewhere would fail the same way.
PERMANENT = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OUT_OF_RANGE}
# The agent, not the job, is the problem: give the job back without spending an attempt.
AGENT_DOWN = {grpc.StatusCode.UNAVAILABLE}
# The agent is busy (its RPC slots or cache are full): give the job back and back off before the next lease.
BUSY = {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED}
BACKOFF_S = (0.5, 30.0)  # first and longest wait after a busy answer; doubles in between
TOOL_MEAN = "/tool-mean"  # the protocol suffix of a vendor tool's record that carries the tool's own statistics


Connect = Callable[[str], AgentClient]  # address -> client, with whatever TLS and token the lab uses


@dataclass(frozen=True)
class AgentEndpoint:
    device_key: str
    address: str


def parse_agent(text: str) -> AgentEndpoint:
    """'KEY=HOST:PORT'."""
    key, sep, address = text.partition("=")
    if not sep or not key or ":" not in address:
        raise ValueError(f"agent must look like KEY=HOST:PORT (e.g. rpi4-cpu-ort=10.0.0.7:50151), got {text!r}")
    return AgentEndpoint(key, address)


def load_agents(path: Path) -> list[AgentEndpoint]:
    """A TOML file of ``[[agents]]`` tables with ``key`` and ``address``."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read agents file {path}: {exc}") from None
    endpoints = []
    for k, entry in enumerate(data.get("agents", [])):
        if not isinstance(entry, dict) or not {"key", "address"} <= set(entry):
            raise ValueError(f"{path}: agents[{k}] needs 'key' and 'address'")
        endpoints.append(AgentEndpoint(str(entry["key"]), str(entry["address"])))
    if not endpoints:
        raise ValueError(f"{path} lists no [[agents]]")
    return endpoints


@dataclass(frozen=True)
class CampaignPlan:
    campaign: str
    device_keys: Sequence[str]
    backend: str = "onnxruntime"
    model_format: str = ""  # empty: what the backend runs first (controller.graph.model_formats.format_for)
    protocol: str = "latbench"
    protocol_params: Mapping[str, float] = field(default_factory=dict)
    batch_size: int = 1
    max_attempts: int = 3
    priority: int = 0  # higher first, within each device key's queue

    def __post_init__(self) -> None:
        object.__setattr__(self, "model_format", format_for(self.backend, self.model_format or None))


def per_key(devices: Sequence[str], values: Sequence[str], default: str | None, what: str) -> dict[str, str | None]:
    """``[KEY=]NAME`` flags -> {device key: NAME}: a bare NAME sets every key, ``KEY=NAME`` one key."""
    chosen: dict[str, str | None] = dict.fromkeys(devices, default)
    for value in values:
        key, sep, name = value.rpartition("=")
        if not name:
            raise SettingError(what, f"must look like NAME or KEY=NAME, got {value!r}")
        if sep and key not in chosen:
            raise SettingError(what, f"{value!r} names device key {key!r}, which is not one of the campaign's "
                                     f"device keys {list(devices)}")
        for k in ([key] if sep else devices):
            chosen[k] = name
    return chosen


def plans_by_runtime(base: CampaignPlan, backends: Sequence[str] = (), formats: Sequence[str] = ()
                     ) -> list[CampaignPlan]:
    """One plan per (backend, model format) among ``base``'s device keys, from ``[KEY=]NAME`` flags.

    A device key is served by agents of one runtime, so a campaign over an ORT agent, a LiteRT agent and a
    PyTorch agent is one plan per runtime, each sending the model format its backend runs.
    """
    backend_of = per_key(base.device_keys, backends, base.backend, "backend")
    format_of = per_key(base.device_keys, formats, None, "model_format")
    groups: dict[tuple[str, str], list[str]] = {}
    for key in base.device_keys:
        backend = backend_of[key] or base.backend
        groups.setdefault((backend, format_for(backend, format_of[key])), []).append(key)
    return [replace(base, device_keys=keys, backend=backend, model_format=fmt)
            for (backend, fmt), keys in groups.items()]


ENQUEUE_CHUNK = 500  # architectures per transaction: bounded memory for whole-space campaigns


def enqueue(store: Store, space: SearchSpace, archs: Sequence[Sequence[int]], plan: CampaignPlan,
            progress: Callable[[int], None] = lambda n: None) -> int:
    """Add the architectures and one job per (arch, device key); returns how many jobs were new.

    Works in chunks, so a 15,625-architecture plan never holds all the CGs (~40 kB each) at once.
    """
    added = 0
    for start in range(0, len(archs), ENQUEUE_CHUNK):
        chunk = archs[start:start + ENQUEUE_CHUNK]
        added += enqueue_candidates(store, [space.candidate(x) for x in chunk], plan)[0]
        progress(len(chunk))
    store.set_priority(plan.campaign, plan.priority)  # a re-run with another --priority re-orders what is left
    return added


def enqueue_candidates(store: Store, candidates: Sequence[Candidate], plan: CampaignPlan
                       ) -> tuple[int, list[JobSpec]]:
    """``enqueue`` for candidates the caller already built; returns (new jobs, every spec, in order)."""
    records = [ArchRecord(arch_id=c.arch_id, space=c.space, arch=c.arch, encoding=c.encoding_text,
                          macs=c.graph.macs(), params=c.graph.params(), cg_json=c.graph.to_json())
               for c in candidates]
    specs = [JobSpec(campaign=plan.campaign, arch_id=c.arch_id, device_key=key, backend=plan.backend,
                     protocol=plan.protocol, protocol_params=plan.protocol_params, batch_size=plan.batch_size,
                     max_attempts=plan.max_attempts, priority=plan.priority, model_format=plan.model_format)
             for c in candidates for key in plan.device_keys]
    store.add_architectures(records)
    return store.enqueue(specs), specs


def model_bytes(arch: ArchRecord, fmt: str = "onnx", batch: int = 1) -> bytes:
    """A stored architecture's model in a format, for inputs of ``batch`` samples (deterministic bytes).

    An ONNX model carries the architecture's identity as metadata, so an agent that replays a recorded
    table (``--backend replay``) knows which row to answer.
    """
    return model_format(fmt).export(ComputationGraph.from_json(arch.cg_json).with_batch(batch),
                                    identity(arch.space, arch.arch, arch.arch_id))



class ModelKey(NamedTuple):
    """What a model's bytes depend on: the architecture, the format and the batch size it takes."""

    arch_id: str
    model_format: str = "onnx"
    batch_size: int = 1

    @classmethod
    def of(cls, job: Job) -> ModelKey:
        return cls(job.arch_id, job.model_format, job.batch_size)


class ModelSource:
    """(arch_id, format, batch) -> sha256 and bytes of its model, exported from the stored CG on first use.

    The sha256 of every model seen is kept (64 bytes each); the bytes only for recently used models, up to
    ``budget_bytes`` (an OFA-ResNet50 subnet is up to ~190 MB), and are re-exported when needed again.
    Export is deterministic, so a re-export has the same hash. Submitted models are exported ahead of the
    workers by one thread (``prepare``), so exporting the next model overlaps the agent measuring this one.
    """

    OFFERED_KEPT = 1024  # in-memory graphs of recently submitted candidates
    AHEAD = 8  # models exported ahead and not yet taken by a worker, at most

    def __init__(self, store: Store, budget_bytes: int = 256 << 20) -> None:
        self.store = store
        self.budget_bytes = budget_bytes
        self._offered: OrderedDict[str, Candidate] = OrderedDict()
        self._sha: dict[ModelKey, str] = {}
        self._arch_of: dict[str, ModelKey] = {}
        self._bytes: OrderedDict[str, bytes] = OrderedDict()
        self._held_bytes = 0
        self._lock = threading.Lock()
        self._ahead_wanted: deque[ModelKey] = deque()  # prepared, in the order the workers will want them
        self._ahead_ready: dict[ModelKey, int] = {}  # exported ahead, not yet taken: their sizes
        self._exporting: dict[ModelKey, threading.Event] = {}  # set when the export ahead ends
        self._ahead_wake = threading.Condition(self._lock)
        self._ahead_thread: threading.Thread | None = None
        self._closed = False

    def sha256(self, key: ModelKey) -> str:
        with self._lock:
            sha = self._sha.get(key)
            self._taken(key)
        return sha if sha is not None else sha256_hex(self.model(key))

    def model(self, key: ModelKey) -> bytes:
        """The model's bytes: held, being exported ahead (waited for), or exported now."""
        while True:
            with self._lock:
                self._taken(key)
                sha = self._sha.get(key)
                if sha is not None and sha in self._bytes:
                    self._bytes.move_to_end(sha)
                    return self._bytes[sha]
                exporting = self._exporting.get(key)
                if exporting is None:  # ours to export: the exporter ahead skips it meanwhile
                    exporting = self._exporting[key] = threading.Event()
                    break
            exporting.wait()
        try:
            return self._export(key)
        finally:
            with self._lock:
                del self._exporting[key]
            exporting.set()

    def _export(self, key: ModelKey) -> bytes:
        with self._lock:
            offered = self._offered.get(key.arch_id)
        if offered is not None:  # the candidate's graph as submitted: no round trip through the store's JSON
            data = model_format(key.model_format).export(
                offered.graph.with_batch(key.batch_size), identity(offered.space, offered.arch, key.arch_id))
        else:
            data = model_bytes(self.store.architecture(key.arch_id), key.model_format, key.batch_size)
        sha = sha256_hex(data)
        with self._lock:
            self._sha[key] = sha
            self._arch_of[sha] = key
            if sha not in self._bytes:
                self._bytes[sha] = data
                self._held_bytes += len(data)
            while self._held_bytes > self.budget_bytes and len(self._bytes) > 1:
                self._held_bytes -= len(self._bytes.popitem(last=False)[1])
        return data

    # -- export ahead ----------------------------------------------------------------------------------
    def prepare(self, keys: Sequence[ModelKey]) -> None:
        """Export these models ahead of the workers, in order, at most ``AHEAD`` (and half the byte budget)
        not yet taken; a worker that wants one before its turn exports it itself."""
        with self._lock:
            if self._closed:
                return
            self._ahead_wanted.extend(k for k in keys if k not in self._sha)
            if self._ahead_thread is None:
                self._ahead_thread = threading.Thread(target=self._export_ahead, name="export-ahead", daemon=True)
                self._ahead_thread.start()
            self._ahead_wake.notify()

    def close(self) -> None:
        """Stop exporting ahead (what is being exported finishes)."""
        with self._lock:
            self._closed = True
            self._ahead_wanted.clear()
            self._ahead_wake.notify()
        if self._ahead_thread is not None:
            self._ahead_thread.join(60)

    def _room_ahead(self) -> bool:
        return (len(self._ahead_ready) < self.AHEAD
                and sum(self._ahead_ready.values()) < self.budget_bytes // 2)

    def _export_ahead(self) -> None:
        while True:
            with self._lock:
                self._ahead_wake.wait_for(lambda: self._closed or (self._ahead_wanted and self._room_ahead()))
                if self._closed:
                    return
                key = self._ahead_wanted.popleft()
                if key in self._sha or key in self._exporting:
                    continue
                done = self._exporting[key] = threading.Event()
            try:
                size = len(self._export(key))
            except Exception:  # the worker that wants it exports it again and records why it failed
                size = -1
            with self._lock:
                del self._exporting[key]
                if size >= 0:
                    self._ahead_ready[key] = size
            done.set()

    def _taken(self, key: ModelKey) -> None:
        """A worker took a model exported ahead: room for the next (called with the lock held)."""
        if self._ahead_ready.pop(key, None) is not None:
            self._ahead_wake.notify()

    def offer(self, candidate: Candidate) -> None:
        """Keep a submitted candidate's graph, so its model is exported from it rather than from the store.

        Export is deterministic and the store's JSON is the graph's canonical form, so the bytes (and hash)
        are the same either way; a restarted controller exports from the store.
        """
        with self._lock:
            self._offered[candidate.arch_id] = candidate
            self._offered.move_to_end(candidate.arch_id)
            while len(self._offered) > self.OFFERED_KEPT:
                self._offered.popitem(last=False)

    def by_sha256(self, sha: str) -> bytes:
        """The bytes of a model this source has handed out; KeyError for any other hash."""
        with self._lock:
            key = self._arch_of[sha]
        return self.model(key)

    def wire_format(self, sha: str) -> str:
        """What goes in the upload header of a model this source has handed out ("onnx", "tflite")."""
        with self._lock:
            return model_format(self._arch_of[sha].model_format).wire_format


def job_profile(job: Job) -> ProfileSpec:
    """How a job's model is profiled, by a worker or by an agent that dials in."""
    return ProfileSpec(backend=job.backend, protocol=job.protocol, protocol_params=job.protocol_params,
                       batch_size=job.batch_size)


def to_record(job: Job, r: Mapping[str, Any]) -> MeasurementRecord:
    """A job's measurement record from the agent's ProfileResult (as ``client.message_dict`` gives it)."""
    shape = r["input_shapes"][0]["dims"] if r["input_shapes"] else []
    stats = r["stats"]
    if r["protocol"].endswith(TOOL_MEAN):  # a vendor tool printed only some statistics: the rest are unknown, not 0
        stats = {k: v for k, v in stats.items() if v or k == "count"}
    return MeasurementRecord(
        job_key=job.job_key, arch_id=job.arch_id, device_key=job.device_key, backend=r["backend"],
        protocol=r["protocol"], protocol_params=r["protocol_params"], batch_size=r["batch_size"],
        input_shape=list(shape), latency_ms=r["latency_ms"], stats=stats, agent_name=r["agent_name"],
        agent_version=r["agent_version"], started_unix_ns=r["started_unix_ns"], finished_unix_ns=r["finished_unix_ns"],
        queue_wait_ms=r["queue_wait_ms"], protocol_details=r["protocol_details"], power=r["power"],
        environment=r["environment"], replayed=r["backend"] == "replay", model_format=job.model_format,
        warnings=tuple(r.get("warnings", ())), load_ms=r.get("load_ms") or None,
        first_inference_ms=r.get("first_inference_ms") or None,
        peak_memory_bytes=int(r["peak_memory_bytes"]) if r.get("peak_memory_bytes") else None,
        memory_source=r.get("memory_source") or None, op_profile=tuple(r.get("op_profile", ())),
    )


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


class HostGates:
    """One gate per machine: agents on one host measure one at a time, since each would disturb the others.

    A lab PC running an ORT, a LiteRT and a PyTorch agent is one host (same ``host_id`` in its DeviceInfo);
    measured concurrently, each contaminates the others (torch rows reached p99 2.7 s). Device keys the user
    declares ``isolated`` (e.g. agents on separate GPUs) take no gate.
    """

    def __init__(self, isolated: Collection[str] = (), note: Callable[[str], None] = log.info) -> None:
        self.isolated = set(isolated)
        self.note = note
        self._lock = threading.Lock()
        self._gates: dict[str, threading.Lock] = {}
        self._agents: dict[str, list[str]] = {}

    def gate(self, endpoint: AgentEndpoint, host_id: str, host_name: str) -> AbstractContextManager:
        """The gate the agent at ``endpoint`` on host ``host_id`` measures under."""
        if endpoint.device_key in self.isolated:
            self.note(f"{endpoint.device_key}={endpoint.address} on host {host_name} is declared isolated: it "
                      f"measures concurrently with other agents of its host")
            return contextlib.nullcontext()
        host = host_id or f"address:{endpoint.address}"  # an agent too old to say: its own host
        with self._lock:
            gate = self._gates.setdefault(host, threading.Lock())
            sharing = self._agents.setdefault(host, [])
            agent = f"{endpoint.device_key}={endpoint.address}"
            if agent in sharing:  # asked again (the fleet profiling outside the queue): said already
                return gate
            sharing.append(agent)
            if len(sharing) > 1:
                self.note(f"host {host_name} runs agents {', '.join(sharing)}: they measure one at a time "
                          f"(--isolated KEY lets a key measure concurrently, e.g. on its own GPU)")
        return gate


class AgentWorker:
    """Drains its device key's queue through one agent."""

    def __init__(self, store: Store, endpoint: AgentEndpoint, lease_s: float, stop: threading.Event,
                 on_done: Callable[[str, str], None], connect: Connect = AgentClient,
                 models: ModelSource | None = None, profile_timeout_s: float = 3600.0,
                 hosts: HostGates | None = None, work: WorkSignal | None = None,
                 on_settled: Callable[[], None] = lambda: None, on_idle: Callable[[], None] = lambda: None) -> None:
        """A worker of a long-lived fleet: it stays up when the queue is empty and wakes when ``work`` is
        signalled (more was submitted); it stops when ``stop`` is set."""
        work = work or WorkSignal()
        self.store, self.endpoint, self.lease_s, self.stop = store, endpoint, lease_s, stop
        self.work, self.on_settled, self.on_idle = work, on_settled, on_idle  # a job settled; nothing to lease
        self.hosts = hosts or HostGates()
        self._gate: AbstractContextManager | None = None  # known once the agent has said which host it is on
        self.connect = connect
        self.models = models or ModelSource(store)
        self.on_done = on_done
        self.profile_timeout_s = profile_timeout_s
        self.owner = worker_owner(endpoint.address)
        self.uploaded: set[str] = set()
        self.backoff_s = 0.0  # grows while the agent answers "busy", back to 0 after a success

    def _work_left(self) -> tuple[int, int]:
        counts = self.store.counts().get(self.endpoint.device_key, {})
        return counts.get("queued", 0), counts.get("leased", 0)

    def run(self) -> None:
        with self.connect(self.endpoint.address) as client:
            job = None
            while not self.stop.is_set():
                seen = self.work.generation
                job = job or self.store.lease(self.endpoint.device_key, self.owner, self.lease_s)
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
            if exc.code in AGENT_DOWN:
                self.store.give_back(job, reason)
                log.warning("agent %s is unreachable; job %s goes back to the queue", self.endpoint.address,
                            job.arch_id[:12])
                return False, None
            if exc.code in BUSY:
                self.store.give_back(job, reason)
                self.backoff_s = min(max(self.backoff_s * 2, BACKOFF_S[0]), BACKOFF_S[1])
                log.warning("agent %s is busy (%s); job %s goes back to the queue, next lease in %.1f s",
                            self.endpoint.address, exc.details, job.arch_id[:12], self.backoff_s)
                self.stop.wait(self.backoff_s)
                return True, None
            state = self.store.fail(job, reason, permanent=exc.code in PERMANENT)
            log.warning("%s on %s: %s -> %s", job.arch_id[:12], self.endpoint.address, exc, state)
            return True, None
        except Exception as exc:  # the model could not be built: retrying cannot help
            log.exception("job %s failed in the controller", job.job_key)
            self.store.fail(job, f"{type(exc).__name__}: {exc}", permanent=True)
            return True, None
        self.backoff_s = 0.0
        following = None if self.stop.is_set() else self.endpoint.device_key
        _, next_job = self.store.complete_and_lease(to_record(job, profile.result), following, self.owner,
                                                    self.lease_s)
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
            if self._gate is None:
                info = client.device_info()
                self._gate = self.hosts.gate(self.endpoint, info.host_id, info.hostname)
            try:
                with self._gate:
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


def wait_for_agents(endpoints: Sequence[AgentEndpoint], timeout_s: float = 10.0,
                    connect: Connect = AgentClient) -> None:
    """Fail early, naming the agents that do not answer."""
    dead = []
    for ep in endpoints:
        with connect(ep.address) as client:
            try:
                client.wait_ready(timeout_s)
            except AgentCallError as exc:
                dead.append(f"{ep.device_key}={ep.address} ({exc.details})")
    if dead:
        raise ConnectionError(f"no answer from: {'; '.join(dead)}")


def summary_line(counts: Mapping[str, Mapping[str, int]]) -> str:
    return "; ".join(f"{key}: " + ", ".join(f"{n} {state}" for state, n in states.items() if n)
                     for key, states in sorted(counts.items()))
