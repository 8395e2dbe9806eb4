"""Golden-model health through a real agent process that is really slowed.

As root, the agent's threads are capped at 15 % of the host's cores by a cpu cgroup (a throttled CPU: about
six times slower, far beyond what a loaded test machine does to a baseline). Otherwise four busy loops are
pinned to one CPU, which roughly doubles the reference network's latency on an agent whose runtime spreads
each inference over the host's cores (onnxruntime's default); an agent pinned to the hogged CPU itself slows
far less: the trimmed mean of its timings leaves out the inferences a hog preempted.

The unit tests of the policy (when checks come, the verdicts, clearing) are in test_scheduler.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from controller.cli.main import main
from controller.fleet import AgentEndpoint, Fleet, FleetConfig
from controller.fleet.campaign import CampaignPlan
from controller.fleet.fleet import QuarantinedKeys
from controller.fleet.golden import golden_arch
from controller.fleet.health import GoldenPolicy
from controller.fleet.local_agent import LocalAgent
from controller.spaces import get_space
from controller.store import Store


@contextlib.contextmanager
def slowed(agent: LocalAgent) -> Iterator[None]:
    """The agent throttled by a cpu cgroup where this process may make one, else hogs beside it."""
    from benchmarks.golden import Throttle

    try:
        throttle = Throttle(agent.process.pid)
    except SystemExit:  # no writable cpu cgroup
        with hogs(min(os.sched_getaffinity(0)), 4):
            yield
        return
    throttle.set(0.15)
    try:
        yield
    finally:
        throttle.close()


@contextlib.contextmanager
def hogs(cpu: int, n: int) -> Iterator[None]:
    """``n`` busy loops pinned to ``cpu``: whatever else runs there gets about 1/(n+1) of it."""
    procs = [subprocess.Popen(["taskset", "-c", str(cpu), sys.executable, "-c",
                               "print('spinning', flush=True)\nwhile True: pass"], stdout=subprocess.PIPE, text=True)
             for _ in range(n)]
    try:
        for proc in procs:  # each is in its loop before the caller goes on
            assert proc.stdout is not None and proc.stdout.readline() == "spinning\n"
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset (util-linux) to pin processes")
def test_a_really_slowed_agent_is_quarantined_its_records_warned_and_cleared_from_the_cli(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    space = get_space("nb201")
    rng = np.random.default_rng(3)
    distinct = {}
    while len(distinct) < 6:
        candidate = space.candidate(space.sample(rng))
        distinct.setdefault(candidate.arch_id, candidate)
    candidates = list(distinct.values())
    plan = CampaignPlan("golden-test", ["cpu-box"], protocol="fixed", protocol_params={"count": 5})
    db = tmp_path / "lab.db"
    policy = GoldenPolicy(every_jobs=2)
    with LocalAgent(tmp_path / "cache") as agent, Store(db) as store:
        config = FleetConfig(endpoints=[AgentEndpoint("cpu-box", agent.address)], golden=policy)
        with Fleet(store, config) as fleet:
            assert all(o.record for o in fleet.results(fleet.submit(candidates[:2], plan)))
            checks = store.checks("cpu-box", golden_arch().arch_id)
            assert len(checks) == 5  # the baseline, measured before (at most one of) the campaign's jobs
            with slowed(agent):
                with pytest.raises(QuarantinedKeys, match="device key cpu-box is quarantined"):
                    fleet.results(fleet.submit(candidates[2:], plan))
        drifted = store.checks("cpu-box", golden_arch().arch_id)[-2:]  # a suspect and its re-check
        assert min(c["latency_ms"] for c in drifted) > max(c["latency_ms"] for c in checks)
        # every job recorded since the key's last good check is warned, and only those
        last_good = store.key_health()["cpu-box"].last_good_unix_s
        jobs = [r for r in store.measurements("cpu-box") if r["space"] != "golden"]
        warned = [r for r in jobs if "golden-model drift on cpu-box" in r["warnings_json"]]
        assert warned == [r for r in jobs if r["recorded_at_unix_s"] > last_good] and len(warned) >= 1
        assert store.counts()["cpu-box"]["queued"] >= 1  # the rest wait

    assert main(["fleet", "ls", "--db", str(db)]) == 1
    listed = capsys.readouterr().out
    assert "cpu-box is quarantined: reference network at" in listed and "quarantined" in listed
    assert main(["fleet", "clear", "cpu-box", "--db", str(db)]) == 0
    assert "cpu-box: cleared" in capsys.readouterr().out
    assert main(["fleet", "clear", "cpu-box", "--db", str(db)]) == 2  # not quarantined any more
    assert "are not quarantined" in capsys.readouterr().err

    with LocalAgent(tmp_path / "cache") as agent, Store(db) as store:
        config = FleetConfig(endpoints=[AgentEndpoint("cpu-box", agent.address)], golden=policy)
        with Fleet(store, config) as fleet:  # unslowed, it checks first, passes, and measures the rest
            assert all(o.record for o in fleet.results(fleet.submit(candidates, plan)))
        assert not store.quarantined_keys() and store.key_health()["cpu-box"].cleared_by


def test_a_build_waiting_only_on_a_quarantined_key_stops_names_it_and_keeps_its_jobs(
        tmp_path: Path, agent, capsys: pytest.CaptureFixture) -> None:
    db = tmp_path / "lab.db"
    with Store(db) as store:
        store.quarantine("lab-cpu", "reference network at 2.000 ms against the baseline 1.000 ms")
    build = ["latbench", "build", "--space", "nb201", "--devices", "lab-cpu", "--sample", "3", "--db", str(db),
             "--agent", agent.address, "--insecure", "--protocol", "fixed", "--param", "count=5", "--quiet"]
    assert main(build) == 1
    err = capsys.readouterr().err
    assert "device key lab-cpu is quarantined (reference network at 2.000 ms" in err
    assert "hwnas fleet clear lab-cpu" in err
    with Store(db) as store:
        assert store.counts()["lab-cpu"]["queued"] == 3 and store.counts()["lab-cpu"]["done"] == 0
    assert main(["fleet", "clear", "lab-cpu", "--db", str(db)]) == 0
    assert main(build) == 0  # cleared: five checks form its baseline, then the three jobs
    with Store(db) as store:
        assert store.counts()["lab-cpu"]["done"] == 8 and len(store.checks("lab-cpu", golden_arch().arch_id)) == 5
    assert main([*build, "--golden-threshold", "2"]) == 2
    assert "--golden-threshold must be within (0, 1)" in capsys.readouterr().err
