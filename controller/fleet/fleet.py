"""One long-lived fleet: the store, the agents (dialled, and dialling in through the gateway), the workers.

Opened once per command, a fleet keeps a worker per configured agent leasing jobs of its device key from the
store's durable queue, and serves agents that dial in. ``submit`` queues candidates as jobs and wakes idle
workers; ``results`` blocks until those jobs are settled (recorded or failed), woken by the workers and
the gateway as each job settles, and returns each job's outcome; ``profile`` measures one model on one agent
outside the queue. Nothing past the CLI sees its flags: it is opened from a typed ``FleetConfig``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field

from hwnas.controller.fleet.agents import AgentEndpoint, Connect
from hwnas.controller.fleet.campaign import CampaignPlan, Enqueued, enqueue, enqueue_candidates
from hwnas.controller.fleet.client import AgentClient, ProfileSpec
from hwnas.controller.fleet.golden import golden_arch
from hwnas.controller.fleet.health import GoldenPolicy
from hwnas.controller.fleet.models import ModelKey, ModelSource
from hwnas.controller.fleet.profile import Profiled, profile_model
from hwnas.controller.fleet.scheduler import Scheduler
from hwnas.controller.fleet.worker import (
    AgentWorker,
    LeaseRenewer,
    WorkSignal,
    reclaim_from_dead_controllers,
    release_leases,
    worker_owner,
)
from hwnas.controller.spaces import Candidate, SearchSpace
from hwnas.controller.store import MeasurementRecord, Store
from hwnas.controller.store.records import device_key_of
from hwnas.protos.auth import TlsFiles

log = logging.getLogger("hwnas.fleet")

TERMINAL = ("done", "failed")


@dataclass(frozen=True)
class FleetConfig:
    """Which agents, and how to reach them and be reached."""

    endpoints: Sequence[AgentEndpoint] = ()
    connect: Connect = AgentClient  # address -> client, with the lab's TLS and token
    lease_s: float = 120.0
    listen: str | None = None  # HOST:PORT to serve agents that dial in
    listen_tls: TlsFiles | None = None
    token: str | None = None
    isolated: Collection[str] = ()  # device keys whose agents may measure beside others of their host
    dial_in: bool = False  # agents also reach this store through a gateway, this fleet's (listen) or another's
    note: Callable[[str], None] = log.info
    on_done: Callable[[str, str], None] = field(default=lambda key, arch_id: None)  # progress: (key, arch_id)
    golden: GoldenPolicy | None = None  # golden-model checks of every key (``fleet.health``); None: none


class QuarantinedKeys(RuntimeError):
    """Measurements wait on device keys that are quarantined (golden-model drift): none will settle until
    someone clears them."""

    def __init__(self, reasons: Mapping[str, str]) -> None:
        self.reasons = dict(reasons)
        keys = " ".join(self.reasons)
        super().__init__("; ".join(f"device key {key} is quarantined ({why})" for key, why in self.reasons.items())
                         + f"; its jobs stay queued: check the device, then `hwnas fleet clear {keys}` (with "
                           "--rebaseline if the change is meant) and run again")


@dataclass(frozen=True)
class Outcome:
    """One job's measurement: its record, or why there is none."""

    job_key: str
    record: MeasurementRecord | None
    error: str = ""
    profiled: Profiled | None = None  # the agent's whole answer, for a model profiled outside the queue


class Fleet:
    """Use as a context manager: ``with Fleet(store, config) as fleet: fleet.results(fleet.submit(...))``."""

    def __init__(self, store: Store, config: FleetConfig, stop: threading.Event | None = None) -> None:
        self.store, self.config = store, config
        self.stop = stop or threading.Event()  # set: workers finish or give back their job and stop
        self.work = WorkSignal()
        self._settled = threading.Condition()
        self._settle_count = 0  # jobs settled: what results() waits for
        self._idle_count = 0  # times a worker found nothing to lease: what drain() waits for
        self.failures: list[BaseException] = []
        self.models = ModelSource(store)
        self.gateway = None
        self._threads: list[threading.Thread] = []
        self._workers: list[AgentWorker] = []
        self._renewer: LeaseRenewer | None = None
        # one per fleet: its workers and its gateway
        self.scheduler = Scheduler(store, config.isolated, config.note, golden=config.golden)

    # -- lifetime --------------------------------------------------------------------------------------
    def __enter__(self) -> Fleet:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> Fleet:
        """Take back leases of dead controllers, start the workers and the gateway (agents that are down
        are waited for by their workers; ``wait_for_agents`` checks them up front)."""
        c = self.config
        self.store.requeue_expired()
        reclaim_from_dead_controllers(self.store)
        if c.listen:
            from hwnas.controller.fleet.gateway import Gateway

            self.gateway = Gateway(self.store, c.listen, c.listen_tls, c.token, c.lease_s, self.models, self._progress,
                                   scheduler=self.scheduler, on_settled=self._on_settled).start()
            c.note(f"listening for agents on {self.gateway.address} "
                   f"({'TLS' if c.listen_tls else 'plaintext, loopback'}{' + token' if c.token else ''})")
        self._workers = [AgentWorker(self.store, ep, c.lease_s, self.stop, self._progress, c.connect, self.models,
                                     scheduler=self.scheduler, work=self.work, on_settled=self._on_settled,
                                     on_idle=self._on_idle)
                         for ep in c.endpoints]
        self._renewer = LeaseRenewer(self.store, [w.owner for w in self._workers], c.lease_s)
        self._threads = [threading.Thread(target=self._run_worker, args=(w,), name=f"worker-{w.endpoint.address}",
                                          daemon=True) for w in self._workers]
        for thread in self._threads:
            thread.start()
        return self

    def close(self) -> None:
        """Stop leasing; running jobs finish or go back; leases held are given back."""
        self.stop.set()
        self.work.notify()
        for thread in self._threads:
            thread.join(30)
        if self._renewer is not None:
            self._renewer.stop()
        release_leases(self.store, self._workers)
        self.models.close()
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None

    def _run_worker(self, worker: AgentWorker) -> None:
        try:
            worker.run()
        except Exception as exc:  # the dataset is full or gone, or a bug: every waiter hears of it
            self.failures.append(exc)
            self._on_settled()
            self._on_idle()

    def _progress(self, device_key: str, arch_id: str) -> None:
        """A job was recorded: the caller's progress hears of its own jobs, not of golden checks."""
        if arch_id != golden_arch().arch_id:
            self.config.on_done(device_key, arch_id)

    def _on_settled(self) -> None:
        with self._settled:
            self._settle_count += 1
            self._settled.notify_all()

    def _on_idle(self) -> None:
        with self._settled:
            self._idle_count += 1
            self._settled.notify_all()

    # -- work ------------------------------------------------------------------------------------------
    def submit(self, candidates: Sequence[Candidate], plan: CampaignPlan) -> list[str]:
        """Queue the candidates on the plan's device keys; returns their job keys in order.

        A job already recorded (this network, measured the same way before) is not measured again.
        """
        served = {ep.device_key for ep in self.config.endpoints}
        unserved = sorted(set(plan.device_keys) - served)
        if unserved and not (self.gateway is not None or self.config.dial_in):
            raise ValueError(f"no agent serves device key(s) {unserved}: give agents for them, or listen for agents "
                             "that dial in")
        for candidate in candidates:
            self.models.offer(candidate)
        _, specs = enqueue_candidates(self.store, candidates, plan)
        states = self.store.job_states([s.job_key for s in specs])
        self.models.prepare(list(dict.fromkeys(ModelKey(s.arch_id, s.model_format, s.batch_size) for s in specs
                                               if states[s.job_key][0] == "queued")))
        self.work.notify()
        return [s.job_key for s in specs]

    def queue(self, space: SearchSpace, archs: Sequence[Sequence[int]], plan: CampaignPlan) -> Enqueued:
        """A campaign's architectures (``campaign.enqueue``) queued on this open fleet: its idle workers wake
        for them. Use ``drain`` to wait for the keys' queues to empty."""
        queued = enqueue(self.store, space, archs, plan)
        self.work.notify()
        return queued

    def _serving(self) -> bool:
        """Whether anything can still settle jobs: a worker thread, or agents dialling in."""
        return any(t.is_alive() for t in self._threads) or self.gateway is not None or self.config.dial_in

    @property
    def _recheck_s(self) -> float:
        """How long a waiter sleeps without news: leases may lapse elsewhere, and where another process's
        gateway serves the store this fleet hears nothing of the jobs it settles."""
        return 0.5 if self.config.dial_in and self.gateway is None else self.config.lease_s / 4

    def profile(self, endpoint: AgentEndpoint, model: bytes, own_format: str, spec: ProfileSpec,
                backend: str | None = None, send_format: str | None = None, ready_timeout_s: float = 10.0) -> Profiled:
        """One model on one agent, outside the queue and the dataset (``hwnas profile``, the demo's first step).

        Dialled with the fleet's TLS and token, converted by the fleet when the backend runs another format,
        and measured under the agent's host gate, so it never overlaps a worker measuring on the same machine.
        """
        with self.config.connect(endpoint.address) as client:
            client.wait_ready(ready_timeout_s)
            info = client.device_info()
            schedule, owner = self.scheduler.for_key(endpoint.device_key), worker_owner(endpoint.address)
            schedule.place(owner, f"{endpoint.device_key}={endpoint.address}", info.host_id, info.hostname)
            with schedule.measuring(owner):
                return profile_model(client, info, model, own_format, spec, backend, send_format)

    def results(self, keys: Sequence[str]) -> list[Outcome]:
        """Each job's outcome, in order, once every one is settled; RuntimeError if none can settle them."""
        while True:
            with self._settled:
                seen = self._settle_count
            states = self.store.job_states(keys)
            unfinished = sum(state not in TERMINAL for state, _ in states.values())
            if not unfinished:
                break
            if self.failures:
                raise self.failures[0]
            if not self._serving() or self.stop.is_set():
                raise RuntimeError(f"{unfinished} measurement(s) are unfinished: no agent is left to run them")
            waiting = {device_key_of(key) for key, (state, _) in states.items() if state not in TERMINAL}
            quarantined = self.store.quarantined_keys()
            if waiting <= quarantined.keys():
                raise QuarantinedKeys({key: quarantined[key] for key in sorted(waiting)})
            with self._settled:  # each settled job is counted: the store is read again once enough have settled
                self._settled.wait_for(lambda then=seen, need=unfinished: self._settle_count - then >= need
                                       or self.stop.is_set() or bool(self.failures), self._recheck_s)
        records = self.store.records(keys)
        return [Outcome(k, records.get(k), "" if k in records else (states[k][1] or "not measured")) for k in keys]

    def drain(self, device_keys: Collection[str]) -> dict[str, dict[str, int]]:
        """Block until the keys have nothing queued or leased (a LatBench build); returns the store's counts.

        Woken when a worker finds nothing to lease (its key may be done) and, with agents dialling in, as
        their jobs settle: not on every job a dialled worker records, which would count the store hundreds
        of times a second.
        """
        dial_in = self.gateway is not None or self.config.dial_in
        while True:
            with self._settled:
                seen = (self._idle_count, self._settle_count if dial_in else 0)
            counts = self.store.counts()
            quarantined = self.store.quarantined_keys()
            if not any(counts.get(k, {}).get("queued", 0) + counts.get(k, {}).get("leased", 0)
                       for k in device_keys if k not in quarantined):
                return counts  # done, but for the jobs of quarantined keys (the caller names them)
            if self.failures:
                raise self.failures[0]
            if not self._serving() or self.stop.is_set():
                return counts
            with self._settled:
                self._settled.wait_for(lambda then=seen: self.stop.is_set() or then != (
                    self._idle_count, self._settle_count if dial_in else 0), self._recheck_s)


def run_campaign(store: Store, endpoints: Sequence[AgentEndpoint], lease_s: float = 120.0,
                 stop: threading.Event | None = None,
                 on_done: Callable[[str, str], None] = lambda key, arch_id: None,
                 connect: Connect = AgentClient, device_keys: Sequence[str] = (),
                 dial_in: bool = False, isolated: Collection[str] = (),
                 note: Callable[[str], None] = log.info) -> dict[str, dict[str, int]]:
    """A fleet over ``endpoints`` until every queued job of their keys (and ``device_keys``) is settled.

    ``dial_in``: agents also dial in (a ``gateway.Gateway`` serves this store), so the campaign is finished
    only when the keys have nothing queued or leased, whoever measures them. Agents on one host measure one
    at a time, except those of ``isolated`` device keys (see ``fleet.scheduler``). Ctrl-C stops the
    workers, which finish or give back their current job; running the same campaign again resumes it.
    """
    config = FleetConfig(endpoints=endpoints, connect=connect, lease_s=lease_s, isolated=isolated, note=note,
                         on_done=on_done, dial_in=dial_in)
    with Fleet(store, config, stop) as fleet:
        return fleet.drain(set(device_keys) | {ep.device_key for ep in endpoints})
