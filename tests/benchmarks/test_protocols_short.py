"""The protocol benchmark in a short form (full form: python -m benchmarks.protocols)."""

from benchmarks.protocols import run


def test_protocol_benchmark_short_form() -> None:
    r = run(models=3, repeat_models=2, repeats=2)
    assert r["median_inferences"]["latbench"] == 1000
    assert 50 <= r["median_inferences"]["adaptive"] <= 1000
    assert all(v >= 0 for v in r["median_cv"].values())
