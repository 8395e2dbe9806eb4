"""Golden-model health through a real agent process that is really slowed.

The agent is stopped (SIGSTOP) for 0.95 of every 1 ms by a real-time process (``tests/throttle.py``), as a
throttled device would be: every inference is stretched, whatever else loads the machine. (At 0.9 the test
failed once in a run beside two benchmarks and a LINAS ablation on 2 cores: a baseline check slowed by that
load widened the baseline's interval past the checks slowed ~10x; ~20x leaves a margin.) Coarser windows do
not hold: a golden inference (about 0.6 ms here) fits in a 1 ms running window or a time slice, and the
trimmed mean leaves out the inferences that stall (a CPU hog or a cgroup quota fail the same way:
docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hwnas.controller.cli.main import main
from hwnas.controller.fleet import AgentEndpoint, Fleet, FleetConfig
from hwnas.controller.fleet.campaign import CampaignPlan
from hwnas.controller.fleet.fleet import QuarantinedKeys
from hwnas.controller.fleet.golden import golden_arch
from hwnas.controller.fleet.health import GoldenPolicy
from hwnas.controller.fleet.local_agent import LocalAgent
from hwnas.controller.spaces import get_space
from hwnas.controller.store import Store


@contextlib.contextmanager
def slowed(agent: LocalAgent) -> Iterator[None]:
    """The agent stopped for 0.95 ms of every millisecond until the block ends (``tests/throttle.py``)."""
    throttle = subprocess.Popen([sys.executable, "-m", "tests.throttle", str(agent.process.pid), "950", "50"],
                                cwd=Path(__file__).parents[2], stdout=subprocess.PIPE, text=True)
    try:
        assert throttle.stdout is not None and throttle.stdout.readline().startswith("throttling")
        yield
    finally:
        throttle.terminate()
        throttle.wait(30)
        os.kill(agent.process.pid, signal.SIGCONT)


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
    assert main(["fleet", "clear", "cpu-box", "--rebaseline", "--db", str(db)]) == 0
    assert "cpu-box: cleared; its next golden checks form a new baseline" in capsys.readouterr().out
    assert main(["fleet", "clear", "cpu-box", "--db", str(db)]) == 2  # not quarantined any more
    assert "are not quarantined" in capsys.readouterr().err

    with LocalAgent(tmp_path / "cache") as agent, Store(db) as store:
        config = FleetConfig(endpoints=[AgentEndpoint("cpu-box", agent.address)], golden=GoldenPolicy(every_jobs=100))
        with Fleet(store, config) as fleet:  # five checks form the new baseline, then the rest is measured
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
