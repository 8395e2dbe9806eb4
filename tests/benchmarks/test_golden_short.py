"""The golden check's benchmark in a short form (full form: sudo python -m benchmarks.golden)."""

import re

import pytest

from benchmarks.golden import checks_to_quarantine, false_quarantines, main
from hwnas.controller.fleet.health import GoldenPolicy


def test_the_replay_counts_quarantines_and_checks_to_quarantine() -> None:
    policy = GoldenPolicy(baseline_checks=3, threshold=0.1)
    steady = [1.0, 1.02, 0.98, 1.01, 0.99, 1.0, 1.02]
    for estimator in ("median", "mean"):
        assert false_quarantines(steady, policy, estimator) == 0
        assert false_quarantines([*steady, 2.0, 2.0], policy, estimator) == 1
        # a 50 % slower series is quarantined at its first periodic check from every start (its re-check
        # confirms)
        slower = [1.5] * (len(steady) + 2)
        assert checks_to_quarantine(steady, slower, policy, estimator) == [1] * (len(steady) - 2)
    # with one check of each baseline slowed 5x by a passing load, only the median still sees a 2x slowdown
    loaded = [5.0] * len(steady)
    assert checks_to_quarantine(steady, [2.0] * 9, policy, "median", loaded) == [1] * (len(steady) - 2)
    assert checks_to_quarantine(steady, [2.0] * 9, policy, "mean", loaded) == [None] * (len(steady) - 2)


def test_golden_benchmark_short_form(capsys: pytest.CaptureFixture) -> None:
    try:
        main(["--rounds", "3", "--thresholds", "0.1", "--baselines", "3"])
    except SystemExit as exc:  # no writable cpu cgroup (not root): the replay above still ran
        pytest.skip(str(exc))
    out = capsys.readouterr().out
    assert "unslowed: median" in out and "quota 0.70: median" in out and "false quarantines" in out
    assert "loaded: median" in out and "baseline 3 (median)" in out and "baseline 3 (mean)" in out
    assert "unslowed after a baseline with one loaded check" in out


def test_a_series_file_that_save_did_not_write_is_named(tmp_path) -> None:
    for text, says in (("{", "not a series that --save wrote (JSONDecodeError"),
                       ('{"machine": "m", "quotas": [0.7], "series": {"unslowed": [1.0]}}',
                        "no checks for quota 0.70, loaded")):
        (tmp_path / "s.json").write_text(text)
        with pytest.raises(SystemExit, match=re.escape(says)):
            main(["--series", str(tmp_path / "s.json")])
