"""The fleet's scheduler as a unit, on a real SQLite store: lease order, host turns, isolation, backoff,
quarantine. (Through real agents: test_campaign's busy-agent and host-gate tests, test_gateway's host tests.)"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from controller.fleet.scheduler import Scheduler
from controller.store import ArchRecord, JobSpec, Store
from tests.controller.test_store import record

ARCH = ArchRecord(arch_id="a" * 64, space="nb201", arch="|x|", encoding="3 3 3 3 3 3", macs=1, params=1,
                  cg_json="{}")


class Clock:
    """A clock the test moves: backoff is checked without waiting for it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "s.db") as s:
        s.add_architectures([ARCH])
        yield s


def enqueue(store: Store, campaign: str, priority: int, n: int, key: str = "k") -> None:
    store.enqueue([JobSpec(campaign=campaign, arch_id=ARCH.arch_id, device_key=key, priority=priority,
                           protocol_params={"runs": float(k), "campaign": float(len(campaign))}) for k in range(n)])


def test_one_scheduler_per_device_key_sharing_one_host_table(store: Store) -> None:
    scheduler = Scheduler(store)
    assert scheduler.for_key("k") is scheduler.for_key("k") and scheduler.for_key("k") is not scheduler.for_key("j")
    assert scheduler.for_key("k").hosts is scheduler.for_key("j").hosts
    with pytest.raises(ValueError, match="lease order 'random' is not known"):
        Scheduler(store, order="random")


def test_leases_go_by_priority_then_age_or_by_arrival(store: Store) -> None:
    enqueue(store, "latbench", 0, 2)
    enqueue(store, "search", 100, 2)
    by_priority = Scheduler(store).for_key("k")
    assert [by_priority.lease("w", 60).campaign for _ in range(2)] == ["search", "search"]
    enqueue(store, "later", 0, 1)
    by_arrival = Scheduler(store, order="arrival").for_key("k")
    assert [by_arrival.lease("w", 60).campaign for _ in range(3)] == ["latbench", "latbench", "later"]
    assert by_arrival.lease("w", 60) is None


def test_a_busy_agent_backs_off_doubling_to_a_cap_and_starts_over_after_a_success(store: Store) -> None:
    enqueue(store, "c", 0, 3)
    clock = Clock()
    schedule = Scheduler(store).for_key("k")
    schedule.clock, schedule.backoff_s = clock, (0.5, 3.0)
    assert [schedule.busy("w") for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert not schedule.may_lease("w") and schedule.lease("w", 60) is None
    assert schedule.wait_s("w") == pytest.approx(3.0) and schedule.lease("other", 60) is not None  # only "w" waits
    clock.now += 3.0
    job = schedule.lease("w", 60)
    assert job is not None
    assert schedule.complete_and_lease(record(job), "w", 60, follow=True) is not None  # and the next one
    assert schedule.busy("w") == 0.5  # a success reset the backoff


def test_a_quarantined_agent_gets_no_job_until_released(store: Store) -> None:
    enqueue(store, "c", 0, 2)
    schedule = Scheduler(store).for_key("k")
    schedule.quarantine("w", "golden model drifted by 40%")
    assert schedule.lease("w", 60) is None and schedule.quarantined() == {"w": "golden model drifted by 40%"}
    assert schedule.lease("healthy", 60) is not None
    schedule.release("w")
    assert schedule.lease("w", 60) is not None


def test_agents_that_dial_in_get_a_job_only_while_no_agent_of_their_host_holds_one(store: Store) -> None:
    enqueue(store, "c", 0, 2, key="pc-ort")
    enqueue(store, "c", 0, 2, key="pc-torch")
    enqueue(store, "c", 0, 2, key="gpu")
    scheduler = Scheduler(store, isolated=["gpu"], note=lambda text: None)
    ort, torch, gpu = (scheduler.for_key(k) for k in ("pc-ort", "pc-torch", "gpu"))
    for schedule, owner in ((ort, "a-ort"), (torch, "a-torch"), (gpu, "a-gpu")):
        schedule.place(owner, owner, "host-1", "pc")
    held = ort.lease("a-ort", 60, gate_on_leases=True)
    assert held is not None
    assert torch.lease("a-torch", 60, gate_on_leases=True) is None  # its host is measuring
    assert gpu.lease("a-gpu", 60, gate_on_leases=True) is not None  # isolated: beside the others
    store.release("a-ort")
    assert torch.lease("a-torch", 60, gate_on_leases=True) is not None


def test_workers_of_one_host_measure_one_at_a_time_and_isolated_keys_do_not_wait(store: Store) -> None:
    notes: list[str] = []
    scheduler = Scheduler(store, isolated=["gpu"], note=notes.append)
    ort, torch, gpu = (scheduler.for_key(k) for k in ("pc-ort", "pc-torch", "gpu"))
    for schedule, owner in ((ort, "w-ort"), (torch, "w-torch"), (gpu, "w-gpu")):
        schedule.place(owner, owner, "host-1", "pc")
    assert any("w-ort, w-torch" in n for n in notes) and any("w-gpu" in n and "isolated" in n for n in notes)
    inside, let_go, other_done = threading.Event(), threading.Event(), threading.Event()
    order: list[str] = []

    def measure_ort() -> None:
        with ort.measuring("w-ort"):
            order.append("ort in")
            inside.set()
            let_go.wait(60)
            order.append("ort out")

    def measure_torch() -> None:
        with torch.measuring("w-torch"):
            order.append("torch in")
        other_done.set()

    first = threading.Thread(target=measure_ort)
    first.start()
    assert inside.wait(60)
    second = threading.Thread(target=measure_torch)
    second.start()
    with gpu.measuring("w-gpu"):  # the isolated key measures while the host's turn is held
        order.append("gpu")
    assert not other_done.is_set() and scheduler.hosts.turn("w-torch").locked()
    let_go.set()
    first.join(60)
    second.join(60)
    assert order.index("ort out") < order.index("torch in") and order.index("gpu") < order.index("ort out")
