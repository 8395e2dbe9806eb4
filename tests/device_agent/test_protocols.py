"""Protocols are pure functions over a 'time one inference' callable: test them with synthetic clocks."""

import itertools

import numpy as np
import pytest

from device_agent.errors import InvalidInput
from device_agent.protocols import PROTOCOLS, get_protocol
from device_agent.stats import iqr_trimmed_mean, summarize


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


def test_adaptive_stops_early_on_a_steady_device_and_runs_long_on_a_noisy_one() -> None:
    params = get_protocol("adaptive").resolve({"min_batches": 3, "max_batches": 50, "rel_precision": 0.01})
    steady = get_protocol("adaptive").run(lambda: 1_000_000, params)
    assert len(steady.samples_ns) == 3 * 10
    rng = np.random.default_rng(0)
    noisy = get_protocol("adaptive").run(lambda: int(rng.lognormal(13.8, 1.0)), params)
    assert len(noisy.samples_ns) > len(steady.samples_ns)


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
