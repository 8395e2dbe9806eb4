"""The fabric benchmark in a short form, so the script cannot rot (full form: python -m benchmarks.fabric)."""

from benchmarks.fabric import run


def test_fabric_benchmark_short_form() -> None:
    result = run(models=2, repeats=2, round_trips=5, params={"runs": 5, "per_run": 5}, rounds=1)
    assert len(result["rows"]) == 2
    for _, local, remote, ratio in result["rows"]:
        assert local > 0 and remote > 0 and ratio == remote / local
    assert 0.3 < result["median_ratio"] < 3
    assert len(result["repeat_rows"]) == 2
    assert 0 < result["round_trip"]["median_ms"] < 1000
