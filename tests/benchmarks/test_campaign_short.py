"""The campaign dispatch benchmark in a short form (full form: python -m benchmarks.campaign)."""

from benchmarks.campaign import dispatch


def test_dispatch_benchmark_short_form() -> None:
    result = dispatch(jobs=40, agents=2, keys=2)
    assert result["done"] == result["jobs"] >= 40
    assert result["jobs_per_s"] > 0
