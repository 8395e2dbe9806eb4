"""The predictor benchmark in a short form (full form: python -m benchmarks.predictors)."""

from benchmarks.predictors import run


def test_predictor_benchmark_short_form() -> None:
    results, wall = run("lat_ms_latbench_desktop_cpu_i7_7820x", ["ridge", "gcn"], seeds=1, n_train=100, n_valid=20,
                        rows=300, configs={"gcn": {"hidden": 32, "epochs": 2}})
    assert [r.kind for r in results] == ["ridge", "gcn"] and wall > 0
    assert all(0 <= r.metrics["brpnas_within_10pct"] <= 1 for r in results)
