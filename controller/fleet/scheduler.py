"""The scheduling policy of the fleet: one ``DeviceScheduler`` per device key decides who measures what, when.

In the style of TVM's RPC tracker (one scheduler per device key), every question of policy is asked of the
key's scheduler, whichever way the agent is reached — a worker of this controller dialling it, or an agent
dialling in through the gateway:

- **lease order and priorities**: which queued job goes next (``order``: the highest priority first, then
  the oldest; the store runs the order in SQL so that racing controllers agree);
- **the host gate and isolation**: agents on one machine disturb each other's timings, so one of them
  measures at a time, unless its key is declared isolated (e.g. an agent on its own GPU). A worker holds the
  host's turn while it measures (``measuring``); an agent that dials in, whose measurement the controller
  cannot hold a lock over, is given a job only while no agent of its host holds one (``lease``);
- **backoff for busy agents**: an agent that answers "busy" gets no job for a while, doubling up to a cap;
- **golden checks and quarantine**: the key measures a reference network at start and every N jobs or M
  minutes, ahead of its other work (``fleet.golden``); a drift quarantines the key in the store, and none of
  its agents gets a job until ``hwnas fleet clear KEY`` (whichever controller serves it).

``Scheduler`` holds the per-key schedulers and the host table they share: one host runs agents of
several keys.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field

from hwnas.controller.fleet.golden import GoldenChecks
from hwnas.controller.fleet.health import GoldenPolicy
from hwnas.controller.store import Job, MeasurementRecord, Store

log = logging.getLogger("hwnas.scheduler")

BACKOFF_S = (0.5, 30.0)  # first and longest wait after a busy answer; doubles in between
QUARANTINE_READ_S = 1.0  # how stale a scheduler's view of its key's quarantine may be (another process clears it)


class Hosts:
    """Which host each agent (by lease owner) runs on, and one turn per host."""

    def __init__(self, note: Callable[[str], None] = log.info) -> None:
        self.note = note
        self._lock = threading.Lock()
        self._host_of: dict[str, str] = {}  # owner -> host id
        self._names: dict[str, str] = {}  # owner -> "KEY=ADDRESS" (what the notes call it)
        self._isolated: set[str] = set()  # owners that measure beside the others of their host
        self._turns: dict[str, threading.Lock] = {}

    def place(self, owner: str, label: str, host_id: str, host_name: str, isolated: bool) -> None:
        """Record that ``owner`` (called ``label`` in notes) runs on ``host_id``; says once who shares a host."""
        with self._lock:
            if self._host_of.get(owner) == host_id:
                return
            self._host_of[owner], self._names[owner] = host_id, label
            if isolated:
                self._isolated.add(owner)
            self._turns.setdefault(host_id, threading.Lock())
            sharing = [self._names[o] for o, h in self._host_of.items() if h == host_id]
        if isolated:
            self.note(f"{label} on host {host_name} is declared isolated: it measures concurrently with other "
                      f"agents of its host")
        elif len(sharing) > 1:
            self.note(f"host {host_name} runs agents {', '.join(sharing)}: they measure one at a time "
                      f"(--isolated KEY lets a key measure concurrently, e.g. on its own GPU)")

    def host(self, owner: str) -> str:
        with self._lock:
            return self._host_of.get(owner, "")

    def neighbours(self, owner: str) -> set[str]:
        """The other owners on ``owner``'s host whose measurements it must not overlap (not the isolated)."""
        with self._lock:
            host = self._host_of.get(owner)
            return {o for o, h in self._host_of.items()
                    if host and h == host and o != owner and o not in self._isolated}

    def turn(self, owner: str) -> threading.Lock | None:
        with self._lock:
            host = self._host_of.get(owner)
            return self._turns.get(host) if host else None


@dataclass
class DeviceScheduler:
    """The policy for one device key's queue; see the module's docstring."""

    store: Store
    device_key: str
    hosts: Hosts
    isolated: bool = False
    order: str = "priority"  # a key of Store.LEASE_ORDERS
    backoff_s: tuple[float, float] = BACKOFF_S
    clock: Callable[[], float] = time.monotonic  # backoff's clock (a test's own, to check it without waiting)
    golden: GoldenChecks | None = None  # the key's golden checks; None: none are run
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _waits: dict[str, float] = field(default_factory=dict, repr=False)  # owner -> current backoff, seconds
    _not_before: dict[str, float] = field(default_factory=dict, repr=False)  # owner -> monotonic instant
    _quarantine: tuple[float, str] = (-math.inf, "")  # (monotonic instant read, why the key is quarantined or "")

    # -- leases ------------------------------------------------------------------------------------
    def lease(self, owner: str, lease_s: float, gate_on_leases: bool = False) -> Job | None:
        """The key's next job for ``owner`` by ``order`` (a golden check first when one is due), now leased to
        it; None when the key is quarantined, the owner is backing off, or (``gate_on_leases``: an agent that
        dials in) while a neighbour on its host holds a job.
        """
        if not self.may_lease(owner):
            return None
        turn = self.hosts.turn(owner) if gate_on_leases and not self.isolated else None
        if turn is None:
            return self._lease(owner, lease_s)
        with turn:  # check and lease as one step, so two agents of a host never both get a job
            neighbours = self.hosts.neighbours(owner)
            if neighbours and any(job.lease_owner in neighbours for job in self.store.leased()):
                return None
            return self._lease(owner, lease_s)

    def _lease(self, owner: str, lease_s: float) -> Job | None:
        check = self.golden.job_key_due() if self.golden is not None else None
        job = self.store.lease(self.device_key, owner, lease_s, order=self.order, job_key=check) if check else None
        return job or self.store.lease(self.device_key, owner, lease_s, order=self.order)

    def complete_and_lease(self, record: MeasurementRecord, owner: str, lease_s: float, follow: bool
                           ) -> Job | None:
        """Record a measurement and, if ``follow`` and the owner may lease, take its next job in one write
        (unless a golden check comes next, or this was one: its verdict may quarantine the key)."""
        self.succeeded(owner)
        golden = self.golden is not None and (self.golden.is_check(record) or self.golden.due_after(record))
        following = self.device_key if follow and not golden and self.may_lease(owner) else None
        record = self._vouched(record)
        recorded, job = self.store.complete_and_lease(record, following, owner, lease_s, order=self.order)
        if recorded:
            self._judge(record)
        if follow and golden:  # leased only now: the check first, or after the check's verdict
            return self.lease(owner, lease_s)
        return job

    def complete(self, record: MeasurementRecord) -> bool:
        """Record a measurement (an agent that dialled in reported it); False if its job already had one."""
        recorded = self.store.complete(self._vouched(record))
        if recorded:
            self._judge(record)
        return recorded

    def _vouched(self, record: MeasurementRecord) -> MeasurementRecord:
        """A record settling while its key is quarantined carries the drift's warning."""
        why = self.quarantined()
        return self.golden.warned(record, why) if self.golden is not None and why else record

    def _judge(self, record: MeasurementRecord) -> None:
        if self.golden is not None and self.golden.recorded(record) is not None:
            self._quarantine = (-math.inf, "")  # the verdict may have changed it: read it again

    def wait_s(self, owner: str) -> float:
        """Seconds until ``owner``'s backoff ends (0 when it may lease; quarantine is not a wait)."""
        with self._lock:
            return max(0.0, self._not_before.get(owner, 0.0) - self.clock())

    def may_lease(self, owner: str) -> bool:
        if self.quarantined():
            return False
        with self._lock:
            return self.clock() >= self._not_before.get(owner, 0.0)

    # -- the host gate -----------------------------------------------------------------------------
    def place(self, owner: str, label: str, host_id: str, host_name: str) -> None:
        """Tell the scheduler which host ``owner`` runs on (an agent too old to say is a host of its own)."""
        self.hosts.place(owner, label, host_id or f"owner:{owner}", host_name, self.isolated)

    @contextlib.contextmanager
    def measuring(self, owner: str) -> Iterator[None]:
        """Hold the host's turn while ``owner`` measures (a worker dialling its agent); isolated keys take none."""
        turn = None if self.isolated else self.hosts.turn(owner)
        with turn if turn is not None else contextlib.nullcontext():
            yield

    # -- busy agents -------------------------------------------------------------------------------
    def busy(self, owner: str) -> float:
        """The agent said it is busy: the seconds it now gets no job (doubling, capped)."""
        first, cap = self.backoff_s
        with self._lock:
            wait = min(max(self._waits.get(owner, 0.0) * 2, first), cap)
            self._waits[owner] = wait
            self._not_before[owner] = self.clock() + wait
        return wait

    def succeeded(self, owner: str) -> None:
        """The agent measured: its backoff starts again from the first step."""
        with self._lock:
            self._waits.pop(owner, None)
            self._not_before.pop(owner, None)

    # -- quarantine --------------------------------------------------------------------------------
    def quarantine(self, reason: str) -> None:
        """No more jobs for the key's agents until ``release`` (or ``hwnas fleet clear``); jobs they hold
        settle as usual."""
        self.store.quarantine(self.device_key, reason)
        self._quarantine = (-math.inf, "")
        log.warning("device key %s is quarantined: %s", self.device_key, reason)

    def release(self, by: str, rebaseline: bool = False) -> bool:
        released = self.store.clear_quarantine(self.device_key, by, rebaseline)
        self._quarantine = (-math.inf, "")
        return released

    def quarantined(self) -> str:
        """Why the key is quarantined ("" when it is not), as the store said at most ``QUARANTINE_READ_S`` ago."""
        read_at, why = self._quarantine
        now = time.monotonic()
        if now - read_at > QUARANTINE_READ_S:
            why = self.store.quarantined_keys().get(self.device_key, "")
            self._quarantine = (now, why)
        return why


class Scheduler:
    """One ``DeviceScheduler`` per device key, made on first use, sharing one host table."""

    def __init__(self, store: Store, isolated: Collection[str] = (), note: Callable[[str], None] = log.info,
                 order: str = "priority", golden: GoldenPolicy | None = None) -> None:
        """``golden``: when the keys measure the reference network and when drift quarantines them; None runs
        no golden checks."""
        if order not in Store.LEASE_ORDERS:
            raise ValueError(f"lease order {order!r} is not known; known: {', '.join(Store.LEASE_ORDERS)}")
        self.store, self.isolated, self.order, self.golden = store, set(isolated), order, golden
        self.hosts = Hosts(note)
        self._lock = threading.Lock()
        self._keys: dict[str, DeviceScheduler] = {}

    def for_key(self, device_key: str) -> DeviceScheduler:
        with self._lock:
            if device_key not in self._keys:
                golden = GoldenChecks(self.store, device_key, self.golden) if self.golden else None
                self._keys[device_key] = DeviceScheduler(self.store, device_key, self.hosts,
                                                         device_key in self.isolated, self.order, golden=golden)
            return self._keys[device_key]
