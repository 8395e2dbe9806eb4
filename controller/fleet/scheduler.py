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
- **quarantine**: an agent whose measurements cannot be trusted (a failed golden-model check, say) gets no
  job until it is released.

``Scheduler`` holds the per-key schedulers and the host table they share: one host runs agents of
several keys.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field

from controller.store import Job, MeasurementRecord, Store

log = logging.getLogger("hwnas.scheduler")

BACKOFF_S = (0.5, 30.0)  # first and longest wait after a busy answer; doubles in between


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
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _waits: dict[str, float] = field(default_factory=dict, repr=False)  # owner -> current backoff, seconds
    _not_before: dict[str, float] = field(default_factory=dict, repr=False)  # owner -> monotonic instant
    _quarantined: dict[str, str] = field(default_factory=dict, repr=False)  # owner -> why

    # -- leases ------------------------------------------------------------------------------------
    def lease(self, owner: str, lease_s: float, gate_on_leases: bool = False) -> Job | None:
        """The key's next job for ``owner`` by ``order``, now leased to it; None when the owner is quarantined
        or backing off, or (``gate_on_leases``: an agent that dials in) while a neighbour on its host holds a job.
        """
        if not self.may_lease(owner):
            return None
        turn = self.hosts.turn(owner) if gate_on_leases and not self.isolated else None
        if turn is None:
            return self.store.lease(self.device_key, owner, lease_s, order=self.order)
        with turn:  # check and lease as one step, so two agents of a host never both get a job
            neighbours = self.hosts.neighbours(owner)
            if neighbours and any(job.lease_owner in neighbours for job in self.store.leased()):
                return None
            return self.store.lease(self.device_key, owner, lease_s, order=self.order)

    def complete_and_lease(self, record: MeasurementRecord, owner: str, lease_s: float, follow: bool
                           ) -> Job | None:
        """Record a measurement and, if ``follow`` and the owner may lease, take its next job in one write."""
        self.succeeded(owner)
        following = self.device_key if follow and self.may_lease(owner) else None
        return self.store.complete_and_lease(record, following, owner, lease_s, order=self.order)[1]

    def wait_s(self, owner: str) -> float:
        """Seconds until ``owner``'s backoff ends (0 when it may lease; quarantine is not a wait)."""
        with self._lock:
            return max(0.0, self._not_before.get(owner, 0.0) - self.clock())

    def may_lease(self, owner: str) -> bool:
        with self._lock:
            if owner in self._quarantined:
                return False
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
    def quarantine(self, owner: str, reason: str) -> None:
        """No more jobs for ``owner`` until ``release``; the job it holds settles as usual."""
        with self._lock:
            self._quarantined[owner] = reason
        log.warning("agent %s of %s is quarantined: %s", owner, self.device_key, reason)

    def release(self, owner: str) -> None:
        with self._lock:
            self._quarantined.pop(owner, None)

    def quarantined(self) -> dict[str, str]:
        """Quarantined owners and why."""
        with self._lock:
            return dict(self._quarantined)


class Scheduler:
    """One ``DeviceScheduler`` per device key, made on first use, sharing one host table."""

    def __init__(self, store: Store, isolated: Collection[str] = (), note: Callable[[str], None] = log.info,
                 order: str = "priority") -> None:
        if order not in Store.LEASE_ORDERS:
            raise ValueError(f"lease order {order!r} is not known; known: {', '.join(Store.LEASE_ORDERS)}")
        self.store, self.isolated, self.order = store, set(isolated), order
        self.hosts = Hosts(note)
        self._lock = threading.Lock()
        self._keys: dict[str, DeviceScheduler] = {}

    def for_key(self, device_key: str) -> DeviceScheduler:
        with self._lock:
            if device_key not in self._keys:
                self._keys[device_key] = DeviceScheduler(self.store, device_key, self.hosts,
                                                         device_key in self.isolated, self.order)
            return self._keys[device_key]
