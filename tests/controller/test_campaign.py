"""LatBench campaigns against real agents on 127.0.0.1, including the fault cases with killed processes."""

import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from hwnas.controller.fleet import campaign, run_campaign, worker
from hwnas.controller.fleet.agents import AgentEndpoint
from hwnas.controller.fleet.campaign import CampaignPlan
from hwnas.controller.fleet.local_agent import LocalAgent
from hwnas.controller.spaces import get_space
from hwnas.controller.spaces.catalog import sample
from hwnas.controller.store import Store
from hwnas.controller.store.export import export

from ..conftest import start_agent
from ..sync import AGENT_DEBUG, busy_neighbour, logged, wait_for

NB201 = get_space("nb201")


def distinct_archs(n: int, seed: int) -> list[list[int]]:
    """n NB-201 cells with distinct CGs (several encodings can prune to one graph, hence one arch_id)."""
    seen: dict[str, list[int]] = {}
    for x in sample(NB201, 4 * n, seed):
        seen.setdefault(NB201.to_graph(x).arch_id, x)
    return list(seen.values())[:n]


def plan(keys, count: int = 5, **kw) -> CampaignPlan:
    return CampaignPlan(campaign="t", device_keys=keys, protocol="fixed", protocol_params={"count": count}, **kw)


def assert_exactly_one_row_per_job(store: Store, expected: int) -> list[dict]:
    """The campaign's ``expected`` jobs, and any golden checks the CLI ran beside them, each have one row."""
    everything = list(store.measurements())
    assert len(everything) == len({r["job_key"] for r in everything})
    rows = [r for r in everything if r["space"] != "golden"]
    assert len(rows) == expected
    counts = store.counts()
    assert sum(c["done"] for c in counts.values()) == len(everything)
    assert sum(c["queued"] + c["leased"] + c["failed"] for c in counts.values()) == 0
    return rows


def test_two_keys_two_agents_then_export(tmp_path: Path) -> None:
    agents = [start_agent(tmp_path / f"c{k}") for k in range(2)]
    try:
        with Store(tmp_path / "ds.db") as store:
            archs = distinct_archs(6, seed=3)
            assert campaign.enqueue(store, NB201, archs, plan(["cpu-a", "cpu-b"])).added == 12
            assert campaign.enqueue(store, NB201, archs, plan(["cpu-a", "cpu-b"])).added == 0  # resume adds nothing
            endpoints = [AgentEndpoint("cpu-a", agents[0].address), AgentEndpoint("cpu-b", agents[1].address)]
            run_campaign(store, endpoints, lease_s=10)
            rows = assert_exactly_one_row_per_job(store, 12)
            assert {r["agent_name"] for r in rows} == {"test-agent"}
            assert export(store, tmp_path / "ds.parquet", "parquet") == 12
            assert export(store, tmp_path / "ds.csv", "csv") == 12
        df = pd.read_parquet(tmp_path / "ds.parquet")
        assert len(df) == 12 and set(df["device_key"]) == {"cpu-a", "cpu-b"}
        assert df.groupby("device_key")["arch_id"].nunique().tolist() == [6, 6]
        assert (df["latency_ms"] > 0).all() and (df["count"] == 5).all()
        assert pd.read_csv(tmp_path / "ds.csv")["arch_id"].tolist() == df["arch_id"].tolist()
    finally:
        for a in agents:
            a.stop()


def test_a_model_the_runtime_refuses_fails_permanently_and_the_rest_completes(tmp_path: Path) -> None:
    agent = start_agent(tmp_path / "c")
    try:
        with Store(tmp_path / "ds.db") as store:
            archs = distinct_archs(3, seed=1)
            campaign.enqueue(store, NB201, archs, plan(["k"], count=5))
            campaign.enqueue(store, NB201, archs[:1], CampaignPlan(
                campaign="t", device_keys=["k"], protocol="fixed", protocol_params={"count": 0}))  # refused
            run_campaign(store, [AgentEndpoint("k", agent.address)], lease_s=10)
            assert store.counts()["k"] == {"queued": 0, "leased": 0, "done": 3, "failed": 1}
    finally:
        agent.stop()


def test_sigkill_an_agent_mid_measurement_its_job_completes_on_the_other(tmp_path: Path) -> None:
    n = 4
    with LocalAgent(tmp_path / "c1", ["--name", "victim"]) as victim, \
            LocalAgent(tmp_path / "c2", ["--name", "survivor"]) as survivor, Store(tmp_path / "ds.db") as store:
        # ~1-4 s per measurement, so the victim is surely mid-job when killed right after the check below.
        campaign.enqueue(store, NB201, distinct_archs(n, seed=5), plan(["k"], count=1500))
        endpoints = [AgentEndpoint("k", victim.address), AgentEndpoint("k", survivor.address)]
        runner = threading.Thread(target=run_campaign, args=(store, endpoints),
                                  kwargs={"lease_s": 2, "isolated": ["k"]}, daemon=True)
        kill_victim_mid_job(store, victim, runner, n, lambda owner: owner.endswith(victim.address))


def test_a_job_whose_agent_dies_measuring_it_spends_that_attempt_and_fails_with_that_cause(tmp_path: Path) -> None:
    """An agent OOM-killed by a job got the job back with 0 attempts spent, so under systemd's Restart=always it
    crash-looped on that job for ever. Dying mid-measurement now spends the attempt (here the only one)."""
    n = 3
    with LocalAgent(tmp_path / "c1", ["--name", "victim", *AGENT_DEBUG]) as victim, \
            LocalAgent(tmp_path / "c2", ["--name", "survivor"]) as survivor, Store(tmp_path / "ds.db") as store:
        campaign.enqueue(store, NB201, distinct_archs(n, seed=5), plan(["k"], count=3000, max_attempts=1))
        endpoints = [AgentEndpoint("k", victim.address), AgentEndpoint("k", survivor.address)]
        runner = threading.Thread(target=run_campaign, args=(store, endpoints),
                                  kwargs={"lease_s": 30, "isolated": ["k"]}, daemon=True)
        runner.start()
        logged(victim, "the timed window opens")  # the victim is measuring: its Profile call is in flight
        held = [j for j in store.leased() if j.lease_owner.endswith(victim.address)]
        victim.process.send_signal(signal.SIGKILL)
        runner.join(180)
        assert not runner.is_alive() and len(held) == 1
        state, error = store.job_states([held[0].job_key])[held[0].job_key]
        assert state == "failed" and "the agent died during this measurement (UNAVAILABLE" in error, error
        assert store.counts()["k"] == {"queued": 0, "leased": 0, "done": n - 1, "failed": 1}
        assert {r["agent_name"] for r in store.measurements()} == {"survivor"}


def kill_victim_mid_job(store: Store, victim: LocalAgent, runner: threading.Thread, n: int,
                        is_victim: Callable[[str], bool]) -> None:
    """Start ``runner`` (the campaign), SIGKILL the victim as soon as it leases its first job; the survivor must
    measure that job.

    The two agents share a host, so the callers declare their key isolated: otherwise the host's gate lets one
    agent measure at a time, and the survivor may win every lease (it did in CI, leaving the victim one job,
    done before the check). Polling starts before the campaign, so a lease seen is at most a poll old, and the
    victim is then at the start of a 1-4 s measurement.
    """
    assert not store.leased()
    start = time.time()
    timeline: list[str] = []  # each change of (victim's leases, counts), for the failure message

    def held() -> set[str]:
        leases = {j.job_key for j in store.leased() if is_victim(j.lease_owner)}
        state = f"{sorted(leases)} {store.counts().get('k', {})}"
        if not timeline or not timeline[-1].endswith(state):
            timeline.append(f"{time.time() - start:.1f}s {state}")
        return leases

    runner.start()
    # No fixed deadline short of the campaign's end: on a loaded CI host one measurement took over a minute.
    while runner.is_alive() and time.time() < start + 240 and not (first := held()):
        time.sleep(0.01)
    assert first, "the victim never leased a job:\n" + "\n".join(timeline)
    victim.process.send_signal(signal.SIGKILL)  # at the start of its 1-4 s measurement
    runner.join(180)
    assert not runner.is_alive() and victim.process.wait(10) == -signal.SIGKILL
    rows = assert_exactly_one_row_per_job(store, n)
    assert {r["job_key"]: r["agent_name"] for r in rows}[first.pop()] == "survivor"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_agent_restarting_with_an_empty_cache_gets_the_model_again(tmp_path: Path) -> None:
    port = free_port()
    first = LocalAgent(tmp_path / "c1", ["--port", str(port)])
    arch = distinct_archs(1, seed=2)
    plans = [plan(["k"], count=200 + k) for k in range(4)]  # one model, four jobs
    restarted: list[LocalAgent] = []
    done = threading.Event()

    def on_done(_key: str, _arch: str) -> None:
        if not done.is_set():
            done.set()

    with Store(tmp_path / "ds.db") as store:
        for p in plans:
            campaign.enqueue(store, NB201, arch, p)
        runner = threading.Thread(target=run_campaign, args=(store, [AgentEndpoint("k", f"127.0.0.1:{port}")]),
                                  kwargs={"lease_s": 5, "on_done": on_done})
        runner.start()
        assert done.wait(60)
        first.stop(signal.SIGKILL)
        restarted.append(LocalAgent(tmp_path / "c2-empty", ["--port", str(port)]))
        runner.join(120)
        try:
            assert not runner.is_alive()
            assert_exactly_one_row_per_job(store, 4)
            assert len([p for p in (tmp_path / "c2-empty").iterdir() if len(p.name) == 64]) == 1
        finally:
            restarted[0].stop()


@pytest.mark.slow
def test_many_jobs_across_eight_agents_each_get_exactly_one_record(tmp_path: Path) -> None:
    """The default suite runs 100 jobs; HWNAS_LONG=1 runs the issue's 1,000."""
    import os

    total = 1000 if os.environ.get("HWNAS_LONG") == "1" else 100
    agents = [start_agent(tmp_path / f"c{k}") for k in range(8)]
    try:
        with Store(tmp_path / "ds.db") as store:
            keys = [f"key{k}" for k in range(4)]
            campaign.enqueue(store, NB201, distinct_archs(total // 4, seed=9),
                             CampaignPlan(campaign="t", device_keys=keys, protocol="fixed",
                                          protocol_params={"count": 1}))
            endpoints = [AgentEndpoint(keys[k % 4], a.address) for k, a in enumerate(agents)]
            run_campaign(store, endpoints, lease_s=30)
            assert_exactly_one_row_per_job(store, total)
    finally:
        for a in agents:
            a.stop()


def kill_mid_campaign(cmd: list[str], db: Path, n: int, key: str = "k") -> None:
    """Start the controller command, SIGKILL it once 3 of the n jobs are done, check it stopped midway."""
    controller = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    while time.time() < deadline:
        if db.exists():
            with Store(db) as store:
                if store.counts().get(key, {}).get("done", 0) >= 3:
                    break
        time.sleep(0.1)
    controller.send_signal(signal.SIGKILL)
    controller.wait(10)
    with Store(db) as store:
        assert 3 <= store.counts()[key]["done"] < n


def test_sigkill_the_controller_then_rerun_finishes_with_exactly_the_planned_rows(tmp_path: Path) -> None:
    n = 10
    db = tmp_path / "ds.db"
    with LocalAgent(tmp_path / "c") as agent:
        cmd = [sys.executable, "-m", "hwnas.controller.cli", "latbench", "build", "--space", "nb201", "--devices", "k",
               "--sample", str(n), "--seed", "4", "--protocol", "fixed", "--param", "count=300", "--db", str(db),
               "--agent", f"k={agent.address}", "--lease-seconds", "2", "--quiet", "--insecure",
               "--no-golden"]  # exactly-once is the point: a loaded host drifted 2x between runs, quarantining k
        kill_mid_campaign(cmd, db, n)
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        assert again.returncode == 0, again.stderr
        assert "0 new job(s)" in again.stdout
        planned = len({NB201.to_graph(x).arch_id for x in sample(NB201, n, 4)})
        with Store(db) as store:
            assert_exactly_one_row_per_job(store, planned)


def test_leases_of_a_dead_controller_on_this_host_come_back_at_once(tmp_path: Path) -> None:
    """A re-run after SIGKILL need not wait for the lease to expire; other owners' leases are left alone."""
    with Store(tmp_path / "s.db") as store:
        campaign.enqueue(store, NB201, distinct_archs(4, 0), plan(["k"]))
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        owners = [f"{socket.gethostname()}:{dead.pid}:127.0.0.1:1",  # this host, a process that is gone
                  worker.worker_owner("127.0.0.1:2"),  # this very process: alive
                  f"some-other-host:{dead.pid}:10.0.0.9:1",  # another host: cannot tell, let it expire
                  "dialout-agent-0123456789"]  # a dial-out agent's lease
        jobs = [store.lease("k", owner, lease_s=3600) for owner in owners]
        assert worker.reclaim_from_dead_controllers(store) == 1
        assert {job.lease_owner for job in store.leased()} == set(owners[1:])
        assert store.counts()["k"]["queued"] == 1 and jobs[0] is not None


def test_a_busy_agent_sends_jobs_back_to_the_queue_not_to_failed(tmp_path: Path, medium_model: bytes,
                                                                  caplog) -> None:
    """RESOURCE_EXHAUSTED ('Concurrent RPC limit exceeded') is transient: the job is retried after a backoff."""
    from hwnas.controller.fleet.client import AgentClient

    agent = start_agent(tmp_path / "c", max_workers=1)
    try:
        with AgentClient(agent.address) as other, Store(tmp_path / "ds.db") as store:
            sha, _ = other.ensure_model(medium_model)
            hog = threading.Thread(target=other.profile, args=(sha,),
                                   kwargs={"protocol": "fixed", "protocol_params": {"count": 1500}})
            hog.start()  # holds the agent's only RPC slot for a few seconds
            wait_for(lambda: agent.servicer.gate.depth == 1, "the hog's measurement to hold the agent")
            campaign.enqueue(store, NB201, distinct_archs(3, seed=2), plan(["k"]))
            with caplog.at_level("WARNING", logger="hwnas.worker"):
                run_campaign(store, [AgentEndpoint("k", agent.address)], lease_s=10)
            hog.join(60)
            assert any("is busy" in r.getMessage() for r in caplog.records), "the agent was never busy"
            assert store.counts()["k"] == {"queued": 0, "leased": 0, "done": 3, "failed": 0}
            assert_exactly_one_row_per_job(store, 3)
    finally:
        agent.stop()


def test_failed_jobs_make_build_exit_non_zero_and_retry_failed_requeues_them(tmp_path: Path) -> None:
    """All jobs failing (a cache too small for the models) exits 1 with the cause; --retry-failed redoes them."""
    db = tmp_path / "ds.db"

    def build(address: str, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "hwnas.controller.cli", "latbench", "build", "--space", "nb201", "--devices", "k",
             "--sample", "3", "--seed", "2", "--protocol", "fixed", "--param", "count=3", "--db", str(db),
             "--agent", f"k={address}", "--quiet", "--no-golden", "--insecure", *extra],
            capture_output=True, text=True, timeout=180)

    with LocalAgent(tmp_path / "small", ["--cache-size", "1000"]) as small:
        failed = build(small.address)
    assert failed.returncode == 1, failed.stderr
    assert "3 failed" in failed.stderr and "exceeds the agent's cache capacity" in failed.stderr, failed.stderr
    assert "--retry-failed" in failed.stderr
    with LocalAgent(tmp_path / "big") as big:
        plain = build(big.address)
        assert plain.returncode == 1 and "3 failed" in plain.stderr  # a plain re-run does not retry failures
        retried = build(big.address, "--retry-failed")
    assert retried.returncode == 0, retried.stderr
    assert "3 failed job(s) queued again" in retried.stdout
    with Store(db) as store:
        assert_exactly_one_row_per_job(store, 3)


def test_agent_warnings_are_stored_exported_excluded_and_remeasured(tmp_path: Path, capsys) -> None:
    """A busy neighbour process during the timed window: the warning reaches the dataset and the flags act on it."""
    from hwnas.controller.cli.main import main

    db = tmp_path / "ds.db"
    build = ["latbench", "build", "--space", "nb201", "--devices", "k", "--sample", "2", "--seed", "3",
             "--protocol", "fixed", "--param", "count=4000", "--db", str(db), "--quiet", "--no-golden", "--insecure"]
    agent = start_agent(tmp_path / "c")
    try:
        with busy_neighbour() as hog:
            assert main([*build, "--agent", f"k={agent.address}"]) == 0
        with Store(db) as store:
            first = {r["job_key"]: r for r in store.measurements()}
        assert len(first) == 2
        for record in first.values():  # the hog is named, unless three processes were busier (a loaded host)
            named = re.findall(r"\(pid (\d+), ", record["warnings_json"])
            assert "other processes used more than" in record["warnings_json"], record["warnings_json"]
            assert str(hog.pid) in named or len(named) == 3, record["warnings_json"]
        assert main(["latbench", "export", "--db", str(db), "--format", "csv", "--out", str(tmp_path / "all.csv")]) == 0
        exported = pd.read_csv(tmp_path / "all.csv")
        assert exported["warnings_json"].str.contains("other processes used more than").all()
        capsys.readouterr()
        assert main(["latbench", "export", "--db", str(db), "--format", "parquet", "--out", str(tmp_path / "ok.pq"),
                     "--exclude-warned"]) == 0
        assert len(pd.read_parquet(tmp_path / "ok.pq")) == 0
        # 0 rows were written without saying why
        assert "--exclude-warned left out 2 record(s) with warnings" in capsys.readouterr().out
        assert main([*build, "--agent", f"k={agent.address}", "--remeasure-warned"]) == 0
        with Store(db) as store:
            again = {r["job_key"]: r for r in store.measurements()}
            assert_exactly_one_row_per_job(store, 2)
        assert set(again) == set(first)
        assert all(again[k]["started_unix_ns"] > first[k]["finished_unix_ns"] for k in first)  # measured anew
        assert not any(f"pid {hog.pid}" in r["warnings_json"] for r in again.values())
    finally:
        agent.stop()



def overlapping_pairs(rows: list[dict]) -> int:
    """Pairs of records of different agents whose timed windows overlap."""
    spans = sorted((r["started_unix_ns"], r["finished_unix_ns"], r["device_key"]) for r in rows)
    return sum(1 for i, a in enumerate(spans) for b in spans[i + 1:] if b[0] < a[1] and b[2] != a[2])


@pytest.mark.parametrize("isolated", [False, True])
def test_agents_on_one_host_measure_one_at_a_time_unless_declared_isolated(tmp_path: Path, isolated: bool) -> None:
    """An ORT and a second agent on one lab PC: measured concurrently, each disturbs the other."""
    agents = [start_agent(tmp_path / f"c{k}") for k in range(2)]
    notes: list[str] = []
    try:
        with Store(tmp_path / "ds.db") as store:
            campaign.enqueue(store, NB201, distinct_archs(8, seed=7), plan(["pc-ort", "pc-other"], count=300))
            endpoints = [AgentEndpoint("pc-ort", agents[0].address), AgentEndpoint("pc-other", agents[1].address)]
            run_campaign(store, endpoints, lease_s=10, note=notes.append,
                                  isolated=["pc-ort", "pc-other"] if isolated else ())
            rows = assert_exactly_one_row_per_job(store, 16)
    finally:
        for a in agents:
            a.stop()
    if isolated:
        assert overlapping_pairs(rows) > 0  # both measure at once, as declared
        assert sum("declared isolated" in n for n in notes) == 2
    else:
        assert overlapping_pairs(rows) == 0
        assert any("measure one at a time" in n and "pc-ort" in n and "pc-other" in n for n in notes), notes


def test_latbench_build_takes_the_same_agent_flags_as_search(tmp_path: Path, capsys) -> None:
    """--agent HOST:PORT (no KEY=) was refused by latbench build while search took it: one flag set now."""
    from hwnas.controller.cli.main import main

    agent = start_agent(tmp_path / "c")
    db = str(tmp_path / "ds.db")
    base = ["latbench", "build", "--space", "nb201", "--sample", "2", "--protocol", "fixed", "--param", "count=3",
            "--db", db, "--quiet", "--no-golden", "--insecure"]
    try:
        assert main([*base, "--devices", "a,b", "--agent", agent.address]) == 2
        assert f"--agent KEY={agent.address}" in capsys.readouterr().err  # two keys: it must say which
        assert main([*base, "--devices", "k", "--agent", agent.address]) == 0
        with Store(db) as store:
            assert store.counts()["k"]["done"] == 2
    finally:
        agent.stop()


def test_a_model_profiled_through_the_fleet_waits_for_workers_measuring_on_its_host(tmp_path: Path,
                                                                                     tiny_model: bytes) -> None:
    """`hwnas profile` and the demo profile outside the queue; on a host where a worker measures, one at a time."""
    from hwnas.controller.fleet import Fleet, FleetConfig
    from hwnas.controller.fleet.client import ProfileSpec

    agents = [start_agent(tmp_path / f"c{k}") for k in range(2)]
    spec = ProfileSpec(protocol="fixed", protocol_params={"count": 300})
    try:
        with Store(tmp_path / "ds.db") as store:
            campaign.enqueue(store, NB201, distinct_archs(6, seed=3), plan(["pc-ort"], count=200))
            with Fleet(store, FleetConfig(endpoints=[AgentEndpoint("pc-ort", agents[0].address)])) as fleet:
                while not store.counts().get("pc-ort", {}).get("done"):  # the worker is measuring
                    time.sleep(0.01)
                profiled = [fleet.profile(AgentEndpoint("pc-other", agents[1].address), tiny_model, "onnx", spec)
                            for _ in range(6)]
                fleet.drain(["pc-ort"])
            rows = assert_exactly_one_row_per_job(store, 6)
    finally:
        for a in agents:
            a.stop()
    assert {p.record.result["backend"] for p in profiled} == {"onnxruntime"}
    assert [p.uploaded for p in profiled] == [True] + [False] * 5
    windows = [{"started_unix_ns": p.record.result["started_unix_ns"],
                "finished_unix_ns": p.record.result["finished_unix_ns"], "device_key": "pc-other"} for p in profiled]
    assert overlapping_pairs(rows + windows) == 0


def test_submitted_models_are_exported_ahead_of_the_workers_each_once_and_a_bounded_number_at_a_time(
        tmp_path: Path) -> None:
    """Export of the next model overlaps the agent measuring this one; never more than AHEAD wait untaken."""
    from hwnas.controller.fleet.models import ModelKey, ModelSource

    with Store(tmp_path / "ds.db") as store:
        source = ModelSource(store)
        candidates = [NB201.candidate(x) for x in distinct_archs(ModelSource.AHEAD + 4, seed=5)]
        keys = [ModelKey(c.arch_id) for c in candidates]
        for c in candidates:
            source.offer(c)
        exported: list[ModelKey] = []
        export = source._export
        source._export = lambda key: exported.append(key) or export(key)

        def settles_at(count: int) -> None:
            """Wait for ``count`` exports to finish, then check the exporter has no room to go on."""
            def finished() -> bool:
                with source._lock:
                    return len(exported) >= count and not source._exporting
            wait_for(finished, f"{count} exports ahead")
            with source._lock:  # the exporter only takes the next key when there is room
                assert len(exported) == count and not source._room_ahead()

        source.prepare(keys)
        settles_at(ModelSource.AHEAD)
        assert exported == keys[:ModelSource.AHEAD]
        first = source.model(keys[0])  # a worker takes one: room for one more
        settles_at(ModelSource.AHEAD + 1)
        assert [source.model(k) for k in keys][0] == first
        assert sorted(exported) == sorted(keys)  # each model exported once, ahead or by the worker
        source.close()
        assert not source._ahead_thread.is_alive()


def test_a_build_summarises_its_own_jobs_in_a_campaign_of_its_own(tmp_path: Path, capsys) -> None:
    """"pc-ort: 346 done" after re-measuring 6: the summary counted the key's jobs of every campaign, and the
    default campaign name SPACE-PROTOCOL merged unrelated builds."""
    from hwnas.controller.cli.main import main

    db = tmp_path / "ds.db"
    agent = start_agent(tmp_path / "c")
    try:
        def build(n: int, seed: int) -> str:
            assert main(["latbench", "build", "--space", "nb201", "--devices", "k", "--sample", str(n), "--seed",
                         str(seed), "--protocol", "fixed", "--param", "count=3", "--db", str(db), "--quiet",
                         "--no-golden",
                         "--insecure", "--agent", f"k={agent.address}"]) == 0
            return capsys.readouterr().out

        first = build(8, seed=1)
        assert "campaign 'nb201-fixed-n8-s1'" in first and "this build: k: 8 done" in first
        second = build(3, seed=2)
        assert "campaign 'nb201-fixed-n3-s2'" in second and "this build: k: 3 done" in second
        again = build(8, seed=1)  # the same command: the same campaign, nothing new, its own 8 jobs
        assert "0 new job(s)" in again and "this build: k: 8 done" in again
        with Store(db) as store:
            assert store.counts()["k"]["done"] == len(list(store.measurements())) <= 11
    finally:
        agent.stop()


def test_a_build_asked_for_op_profiles_stores_and_exports_them(tmp_path: Path) -> None:
    """#37: `latbench build --op-profile --memory` keeps each runtime's own per-op profile and the model's own
    memory footprint with the record."""
    import json

    from hwnas.controller.cli.main import main

    db = tmp_path / "ds.db"
    agent = start_agent(tmp_path / "c")
    try:
        for n, extra in ((2, ["--op-profile", "--memory"]), (3, [])):  # the second adds one network without
            assert main(["latbench", "build", "--space", "nb201", "--devices", "k", "--sample", str(n), "--seed",
                         "4", "--protocol", "fixed", "--param", "count=5", "--db", str(db), "--quiet", "--no-golden",
                         "--insecure", "--agent", f"k={agent.address}", "--campaign", "ops", *extra]) == 0
    finally:
        agent.stop()
    assert main(["latbench", "export", "--db", str(db), "--format", "csv", "--out", str(tmp_path / "x.csv")]) == 0
    exported = pd.read_csv(tmp_path / "x.csv")
    profiles = [json.loads(cell) for cell in exported["op_profile_json"]]
    assert sorted(len(p) > 0 for p in profiles) == [False, True, True]  # the first two jobs asked for it
    assert all(op["time_ms"] > 0 and op["op_type"] for p in profiles for op in p)
    # mapped to the CG's nodes by the exporter's names (n7, onnxruntime's n7_nchwc): most ops have one
    with Store(db) as store:
        sizes = {r["arch_id"]: len(json.loads(store.architecture(r["arch_id"]).cg_json)["nodes"])
                 for r in store.measurements()}
    for arch_id, profile in zip(exported["arch_id"], profiles, strict=True):
        nodes = [op["cg_node"] for op in profile]
        assert all(0 < n < sizes[arch_id] for n in nodes if n is not None)
        assert sum(n is not None for n in nodes) >= len(nodes) / 2
    assert (exported["load_ms"] > 0).all() and (exported["model_bytes"] > 0).all()
    footprints = exported["peak_memory_bytes"].fillna(0).tolist()
    assert sorted(f > 0 for f in footprints) == [False, True, True]  # the model's own, where asked (#37)
    assert exported["memory_source"].fillna("").str.contains("fresh process").sum() == 2


def test_every_job_records_who_submitted_it(tmp_path: Path, capsys) -> None:
    """#37 audit: the client certificate's subject a command shows agents, else its token's name, else the
    local user at this host."""
    import getpass
    import socket

    from hwnas.controller.cli.common import submitter
    from hwnas.controller.cli.main import build_parser, main
    from hwnas.controller.fleet.certs import init_lab

    db = tmp_path / "ds.db"
    agent = start_agent(tmp_path / "c")
    try:
        assert main(["latbench", "build", "--space", "nb201", "--devices", "k", "--sample", "2", "--seed", "1",
                     "--protocol", "fixed", "--param", "count=3", "--db", str(db), "--quiet", "--insecure",
                     "--agent", f"k={agent.address}", "--campaign", "mine"]) == 0
    finally:
        agent.stop()
    capsys.readouterr()
    assert main(["latbench", "status", "--db", str(db), "--campaign", "mine"]) == 0
    assert f"submitted by: {getpass.getuser()}@{socket.gethostname()} (2 job(s))" in capsys.readouterr().out
    lab = tmp_path / "lab"
    init_lab(lab, hosts=["127.0.0.1"])
    args = ["latbench", "build", "--space", "nb201", "--devices", "k2", "--sample", "1", "--db", str(db)]
    with_cert = build_parser().parse_args([*args, "--tls-ca", str(lab / "ca.pem"), "--tls-cert",
                                           str(lab / "controller.pem"), "--tls-key", str(lab / "controller.key")])
    assert submitter(with_cert).startswith("certificate CN=")
    with_token = build_parser().parse_args([*args, "--insecure", "--token-file", str(lab / "token")])
    assert submitter(with_token) == "token token"


def test_a_build_checks_outputs_and_keeps_a_wrong_answer_out_of_predictors(tmp_path: Path) -> None:
    """#37: `--check-output` records ok / wrong_answer per job; a wrong answer for real: the agent's cached
    copy of one model had its weights altered after upload (a corrupted cache)."""
    import hashlib

    import onnx
    from onnx import numpy_helper

    from hwnas.controller.cli.main import main
    from hwnas.controller.fleet.client import AgentClient
    from hwnas.controller.fleet.models import model_bytes
    from hwnas.controller.learning.jobs import samples_from_store

    db = tmp_path / "ds.db"
    build = ["latbench", "build", "--space", "nb201", "--sample", "2", "--seed", "6", "--protocol", "fixed",
             "--param", "count=3", "--db", str(db), "--quiet", "--no-golden", "--insecure", "--check-output"]
    good, bad = start_agent(tmp_path / "c1"), start_agent(tmp_path / "c2")
    try:
        assert main([*build, "--devices", "k", "--agent", f"k={good.address}"]) == 0
        with Store(db) as store:
            records = list(store.measurements("k"))
            assert [r["output_check_status"] for r in records] == ["ok", "ok"]
            assert all(r["output_max_abs_error"] < 1e-3 for r in records)
            victim = records[0]["arch_id"]
            data = model_bytes(store.architecture(victim))
        with AgentClient(bad.address) as client:
            sha, _ = client.ensure_model(data)
        altered = onnx.load_from_string(data)
        weights = altered.graph.initializer[0]
        weights.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weights) * 3.0, weights.name))
        (tmp_path / "c2" / sha).write_bytes(altered.SerializeToString())  # behind the agent's back
        assert hashlib.sha256(data).hexdigest() == sha
        assert main([*build, "--devices", "k2", "--agent", f"k2={bad.address}"]) == 0
    finally:
        good.stop()
        bad.stop()
    with Store(db) as store:
        verdicts = {r["arch_id"]: r["output_check_status"] for r in store.measurements("k2")}
        assert verdicts[victim] == "wrong_answer" and sorted(verdicts.values()) == ["ok", "wrong_answer"]
        _, samples = samples_from_store(store, "k2")  # stored and exported, but not learnt from
        assert len(samples) == 1


def test_a_dialled_agent_reporting_an_impossible_latency_spends_attempts_and_stores_nothing(
        tmp_path: Path, monkeypatch) -> None:
    """#36: a dialled agent's result of NaN is refused like a dial-out one: the attempt fails with the reason,
    the job is measured again up to its attempts, and no record is stored (the worker keeps going)."""
    from hwnas.device_agent import server as agent_server

    honest = agent_server.AgentServicer._result

    def hostile(self, request, backend_name, m, waited_s):
        result = honest(self, request, backend_name, m, waited_s)
        result.latency_ms = float("nan")
        return result

    monkeypatch.setattr(agent_server.AgentServicer, "_result", hostile)
    agent = start_agent(tmp_path / "c")
    try:
        with Store(tmp_path / "ds.db") as store:
            campaign.enqueue(store, NB201, distinct_archs(2, seed=12), plan(["k"], count=3, max_attempts=2))
            run_campaign(store, [AgentEndpoint("k", agent.address)], lease_s=10)
            assert store.counts()["k"] == {"queued": 0, "leased": 0, "done": 0, "failed": 2}
            assert list(store.measurements()) == []
            (cause, n), = store.failure_causes()
            assert n == 2 and "invalid result from" in cause and "latency_ms must be a finite number > 0" in cause
    finally:
        agent.stop()
