"""The per-op profile's cost in a short form (full form: python -m benchmarks.op_profile)."""

from benchmarks.op_profile import RUNTIMES, run


def test_op_profile_benchmark_short_form() -> None:
    r = run(models=2, count=20)
    assert set(r) == set(RUNTIMES)
    assert all(figures["latency"] > 0 and figures["wall"] > 0 for figures in r.values())
