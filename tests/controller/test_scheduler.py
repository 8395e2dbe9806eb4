"""The fleet's scheduler as a unit, on a real SQLite store: lease order, host turns, isolation, backoff,
golden checks and quarantine. (Through real agents: test_campaign's busy-agent and host-gate tests,
test_gateway's host tests, test_golden.)"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hwnas.controller.errors import SettingError
from hwnas.controller.fleet.golden import golden_arch, key_health
from hwnas.controller.fleet.health import GOLDEN_CAMPAIGN, Baseline, Check, GoldenPolicy, judge
from hwnas.controller.fleet.scheduler import DeviceScheduler, Scheduler
from hwnas.controller.store import ArchRecord, JobSpec, Store
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


def test_a_quarantined_key_gets_no_job_from_any_controller_until_cleared(store: Store) -> None:
    enqueue(store, "c", 0, 2)
    enqueue(store, "c", 0, 1, key="j")
    schedule, elsewhere = Scheduler(store).for_key("k"), Scheduler(store).for_key("k")  # two controllers
    assert elsewhere.quarantined() == ""
    schedule.quarantine("golden model drifted by 40%")
    assert schedule.lease("w", 60) is None and schedule.quarantined() == "golden model drifted by 40%"
    elsewhere._quarantine = (float("-inf"), "")  # its view is at most QUARANTINE_READ_S old; make it read now
    assert elsewhere.lease("other-agent", 60) is None
    assert store.quarantined_keys() == {"k": "golden model drifted by 40%"}
    assert Scheduler(store).for_key("j").lease("w", 60) is not None  # only that key
    assert store.clear_quarantine("k", by="alice") and not store.clear_quarantine("k", by="alice")
    assert schedule.lease("w", 60) is None  # not yet re-read ...
    schedule._quarantine = (float("-inf"), "")
    assert schedule.lease("w", 60) is not None  # ... and now it leases again
    assert store.key_health()["k"].cleared_by == "alice"


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


# -- golden-model checks: the policy, with the figures of each check given (through real agents: test_golden) ---

def golden_scheduler(store: Store, clock: Clock | None = None, **policy) -> DeviceScheduler:
    scheduler = Scheduler(store, golden=GoldenPolicy(**{"every_jobs": 3, "baseline_checks": 3, **policy}))
    schedule = scheduler.for_key("k")
    if clock is not None:
        schedule.golden.clock = clock
        schedule.golden._last_check = clock()
    return schedule


def measure(schedule: DeviceScheduler, latency_ms: float, check: bool) -> None:
    """Lease the key's next job, which must (not) be a golden check, and record it at ``latency_ms``."""
    job = schedule.lease("w", 60)
    assert job is not None and (job.campaign == GOLDEN_CAMPAIGN) == check, job
    assert schedule.complete_and_lease(record(job, latency_ms), "w", 60, follow=False) is None


def baseline_then_jobs(schedule: DeviceScheduler, baseline: tuple[float, ...] = (1.0, 1.02, 0.98),
                       jobs: int = 3) -> None:
    """The key's baseline checks at ``baseline`` ms, then ``jobs`` jobs of its work (5 ms each)."""
    for latency in baseline:
        measure(schedule, latency, check=True)
    for _ in range(jobs):
        measure(schedule, 5.0, check=False)


def test_golden_checks_come_first_at_start_until_the_baseline_forms_then_every_n_jobs(store: Store) -> None:
    enqueue(store, "c", 0, 12)
    schedule = golden_scheduler(store)
    first = schedule.lease("w", 60)
    assert first.campaign == GOLDEN_CAMPAIGN and first.arch_id == golden_arch().arch_id
    assert (first.backend, first.model_format, first.batch_size) == ("onnxruntime", "onnx", 1)  # as the key's work
    assert schedule.complete_and_lease(record(first, 1.0), "w", 60, follow=False) is None
    for latency in (1.02, 0.98):
        measure(schedule, latency, check=True)
    for _ in range(3):
        measure(schedule, 5.0, check=False)
    measure(schedule, 1.01, check=True)  # after 3 jobs
    assert [r["state"] for r in key_health(store)] == ["ok"]
    for _ in range(2):
        measure(schedule, 5.0, check=False)
    store.enqueue([JobSpec(campaign="prio", arch_id=ARCH.arch_id, device_key="k", priority=10**6)])
    measure(schedule, 5.0, check=False)  # a campaign of high priority still waits for a due check
    measure(schedule, 0.99, check=True)
    assert not store.quarantined_keys()


def test_a_check_due_by_time_comes_even_after_few_jobs(store: Store) -> None:
    enqueue(store, "c", 0, 8)
    clock = Clock()
    schedule = golden_scheduler(store, clock, every_jobs=100, every_s=60.0)
    for latency in (1.0, 1.02, 0.98):
        measure(schedule, latency, check=True)
    measure(schedule, 5.0, check=False)
    clock.now += 61
    measure(schedule, 1.0, check=True)
    measure(schedule, 5.0, check=False)


def test_drift_twice_in_a_row_quarantines_the_key_and_warns_its_records_since_the_last_good_check(
        store: Store) -> None:
    enqueue(store, "c", 0, 20)
    schedule = golden_scheduler(store)
    baseline_then_jobs(schedule)
    measure(schedule, 1.01, check=True)  # the last good check
    for _ in range(3):
        measure(schedule, 5.5, check=False)  # the device slowed meanwhile
    measure(schedule, 1.5, check=True)  # a suspect: checked again at once ...
    assert not store.quarantined_keys()
    measure(schedule, 1.45, check=True)  # ... and drift
    assert "k" in store.quarantined_keys() and "+" in store.quarantined_keys()["k"]
    assert schedule.lease("w", 60) is None
    rows = list(store.measurements("k"))
    warned = [r for r in rows if "golden-model drift on k" in r["warnings_json"]]
    assert len(warned) == 3 and all(r["latency_ms"] == 5.5 for r in warned)  # not the 5.0 before the good check
    assert [r["state"] for r in key_health(store)] == ["quarantined"]
    # cleared, the key checks first; a slow check is a suspect again (the slow checks before the clear
    # confirm nothing), checked again at once; recovered, it measures again
    store.clear_quarantine("k", by="test")
    schedule._quarantine = (float("-inf"), "")
    measure(schedule, 1.5, check=True)
    assert not store.quarantined_keys()
    measure(schedule, 1.0, check=True)
    measure(schedule, 5.0, check=False)
    assert not store.quarantined_keys()


def test_one_slow_check_is_a_suspect_not_a_quarantine(store: Store) -> None:
    enqueue(store, "c", 0, 12)
    schedule = golden_scheduler(store)
    baseline_then_jobs(schedule)
    measure(schedule, 1.6, check=True)
    measure(schedule, 1.0, check=True)  # the re-check is back within bounds
    measure(schedule, 5.0, check=False)
    assert not store.quarantined_keys()


def test_a_rebaseline_makes_the_next_checks_the_new_baseline(store: Store) -> None:
    enqueue(store, "c", 0, 15)
    schedule = golden_scheduler(store)
    baseline_then_jobs(schedule)
    for latency in (2.0, 2.0):
        measure(schedule, latency, check=True)
    assert "k" in store.quarantined_keys()
    store.clear_quarantine("k", by="test", rebaseline=True)
    schedule._quarantine = (float("-inf"), "")
    baseline_then_jobs(schedule, (2.0, 2.02, 1.98))  # the new firmware's speed
    measure(schedule, 2.01, check=True)
    assert not store.quarantined_keys()


def test_a_key_whose_backend_cannot_run_the_reference_network_measures_on_without_checks(store: Store) -> None:
    enqueue(store, "c", 0, 3)
    schedule = golden_scheduler(store)
    check = schedule.lease("w", 60)
    assert check.campaign == GOLDEN_CAMPAIGN
    store.fail(check, "INVALID_ARGUMENT: unsupported op", permanent=True)
    for _ in range(3):
        measure(schedule, 5.0, check=False)


def test_the_verdict_uses_the_baselines_confidence_interval_in_both_directions() -> None:
    policy = GoldenPolicy(threshold=0.1, baseline_checks=3)
    steady = [Check(v, t) for t, v in enumerate((1.0, 1.02, 0.98))]
    baseline = Baseline.of(steady)
    assert baseline.mean_ms == pytest.approx(1.0) and baseline.low_ms < 0.98 and baseline.high_ms > 1.02
    assert judge(steady[:2], policy).status == "baseline"
    assert judge([*steady, Check(1.0, 4)], policy).status == "ok"
    assert judge([*steady, Check(0.5, 4)], policy).status == "suspect"
    assert judge([*steady, Check(0.5, 4), Check(0.55, 5)], policy).status == "drift"  # faster is drift too
    assert judge([*steady, Check(1.6, 4), Check(0.5, 5)], policy).status == "suspect"  # not the same direction
    noisy = [Check(v, t) for t, v in enumerate((1.0, 1.3, 0.8))]  # a wide interval needs a larger change
    assert judge([*noisy, Check(1.5, 4), Check(1.5, 5)], policy).status == "ok"
    with pytest.raises(SettingError, match="golden_threshold must be within"):
        GoldenPolicy(threshold=1.5)
