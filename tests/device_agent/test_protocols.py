"""Protocols are pure functions over a 'time one inference' callable: test them with synthetic clocks."""

import itertools

import numpy as np
import pytest

from hwnas.device_agent.errors import InvalidInput
from hwnas.device_agent.protocols import PROTOCOLS, get_protocol
from hwnas.device_agent.stats import iqr_trimmed_mean, summarize, trimmed_mean_se


def sequence_timer(values_ns):
    it = iter(values_ns)
    return lambda: next(it)


def test_iqr_trimmed_mean_keeps_only_the_middle_half() -> None:
    # P25 = 3, P75 = 7 (linear interpolation over 1..9); outliers 1000 and 0 are dropped.
    values = [0, 2, 3, 4, 5, 6, 7, 8, 1000]
    assert np.percentile(values, [25, 75]).tolist() == [3.0, 7.0]
    assert iqr_trimmed_mean(values) == pytest.approx(np.mean([3, 4, 5, 6, 7]))


def test_latbench_trims_within_runs_then_across_runs() -> None:
    runs = [
        [1_000_000] * 9 + [50_000_000],  # one outlier inside a run: trimmed away -> 1 ms
        [2_000_000] * 10,                 # 2 ms
        [3_000_000] * 10,                 # 3 ms
        [400_000_000] * 10,               # an outlier run: trimmed across runs
    ]
    outcome = get_protocol("latbench").run(sequence_timer(itertools.chain(*runs)), {"runs": 4, "per_run": 10})
    # run means 1, 2, 3, 400 -> P25 = 1.75, P75 = 102.25 -> keeps 2 and 3.
    assert outcome.latency_ms == pytest.approx(2.5)
    assert len(outcome.samples_ns) == 40


def test_latbench_defaults_are_100_runs_of_10() -> None:
    calls = itertools.count()
    outcome = get_protocol("latbench").run(lambda: next(calls) % 7 + 1, get_protocol("latbench").resolve({}))
    assert len(outcome.samples_ns) == 1000


def test_fixed_times_exactly_count_inferences() -> None:
    outcome = get_protocol("fixed").run(sequence_timer([1_000_000, 3_000_000] * 10), {"count": 20})
    assert len(outcome.samples_ns) == 20
    assert outcome.latency_ms == pytest.approx(2.0)


def test_adaptive_stops_once_the_trimmed_mean_is_known_to_one_percent() -> None:
    adaptive = get_protocol("adaptive")
    params = adaptive.resolve({})
    steady = adaptive.run(lambda: 1_000_000, params)
    assert len(steady.samples_ns) == 10 * 10  # min_blocks x block
    assert steady.details["converged"] == 1.0 and steady.details["ci95_half_width_ms"] == 0.0
    assert steady.latency_ms == pytest.approx(1.0)

    rng = np.random.default_rng(0)
    noisy = adaptive.run(lambda: int(1e6 * rng.lognormal(0, 0.3)), params)
    details = noisy.details
    assert len(noisy.samples_ns) == 10 * details["blocks"] > len(steady.samples_ns)
    if details["converged"]:
        assert details["ci95_rel"] <= 0.01
    assert details["ci95_half_width_ms"] == pytest.approx(details["ci95_rel"] * noisy.latency_ms)


def test_adaptive_ci_shrinks_with_samples_not_blocks() -> None:
    """5 % lognormal noise: the Tukey-McLaughlin CI of the trimmed mean reaches 1 % in about 130 samples;
    a CI over 10-sample block means would need several times more."""
    adaptive = get_protocol("adaptive")
    rng = np.random.default_rng(0)
    outcome = adaptive.run(lambda: int(1e6 * rng.lognormal(0, 0.05)), adaptive.resolve({}))
    assert outcome.details["converged"] == 1.0 and 10 < outcome.details["blocks"] < 30
    assert outcome.details["samples"] == len(outcome.samples_ns) == 10 * outcome.details["blocks"]
    assert outcome.latency_ms == pytest.approx(1.0, rel=0.02)


def test_trimmed_mean_standard_error_by_hand() -> None:
    # P25 = 2.75 and P75 = 6.25: kept 3..6 (mean 4.5); winsorized sample sd = sqrt(17.25 / 7);
    # SE = sd / (0.5 * sqrt(8))
    mean, se, kept = trimmed_mean_se([1, 2, 3, 4, 5, 6, 7, 8])
    assert (mean, kept) == (4.5, 4)
    assert se == pytest.approx(np.sqrt(17.25 / 7) / (0.5 * np.sqrt(8)))
    with pytest.raises(ValueError, match="two or more"):
        trimmed_mean_se([1.0])


def test_adaptive_respects_its_caps() -> None:
    adaptive = get_protocol("adaptive")
    rng = np.random.default_rng(1)
    wild = lambda: int(1e6 * rng.lognormal(0, 2.0))  # noqa: E731 - never converges at 1%
    capped = adaptive.run(wild, adaptive.resolve({"max_blocks": 8}))
    assert capped.details == pytest.approx({**capped.details, "blocks": 8.0, "converged": 0.0})
    slow = adaptive.run(lambda: 400_000_000, adaptive.resolve({"max_seconds": 10, "rel_ci": 0}))
    assert slow.details["blocks"] == 3  # 3 blocks x 10 x 0.4 s >= 10 s of timed inference


@pytest.mark.parametrize("overrides, message", [
    ({"rounds": 3}, "has no parameter"),
    ({"runs": 0}, "must be >="),
    ({"runs": 2.5}, "must be an integer"),
    ({"per_run": float("nan")}, "must be >="),
])
def test_bad_parameters_are_refused_by_name(overrides, message) -> None:
    with pytest.raises(InvalidInput, match=message):
        get_protocol("latbench").resolve(overrides)


def test_unknown_protocol_names_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match="known: .*latbench"):
        get_protocol("lat-bench")


def test_every_protocol_resolves_its_defaults() -> None:
    for protocol in PROTOCOLS.values():
        assert protocol.resolve({}) == {k: p.default for k, p in protocol.params.items()}


def test_summary_statistics_in_ms() -> None:
    stats = summarize([1_000_000, 2_000_000, 3_000_000, 4_000_000])
    assert (stats.count, stats.min_ms, stats.max_ms, stats.mean_ms, stats.median_ms) == (4, 1.0, 4.0, 2.5, 2.5)
    assert stats.std_ms == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert stats.p90_ms == pytest.approx(3.7)
