"""The predictor benchmark in a short form (full form: python -m benchmarks.predictors)."""

from benchmarks.predictors import noise_ceiling, run


def test_predictor_benchmark_short_form() -> None:
    results, wall = run("lat_ms_latbench_desktop_cpu_i7_7820x", ["ridge", "gcn"], seeds=1, n_train=100, n_valid=20,
                        rows=300, configs={"gcn": {"hidden": 32, "epochs": 2}})
    assert [r.kind for r in results] == ["ridge", "gcn"] and wall > 0
    assert all(0 <= r.metrics["brpnas_within_10pct"] <= 1 for r in results)


def test_noise_ceiling_of_the_i7_column() -> None:
    ceiling = noise_ceiling("lat_ms_latbench_desktop_cpu_i7_7820x")
    assert ceiling["cells"] > 5000  # NB-201 has 15,284 connected cells but 9,444 distinct networks
    assert 0.3 < ceiling[1] < ceiling[5] < ceiling[10] < 1.0


def test_layerwise_benchmark_short_form(tmp_path) -> None:
    from benchmarks.layerwise import bench, measure

    measure(tmp_path / "l.db", tmp_path / "cache", networks=14, count=2)
    results, n = bench(tmp_path / "l.db", ["layerwise", "ridge"], seeds=1, n_train=6, n_valid=2)
    assert [r.kind for r in results] == ["layerwise", "ridge"] and 10 <= n <= 14
    assert 0 <= results[0].metrics["brpnas_within_10pct"] <= 1


def test_transfer_benchmark_short_form() -> None:
    from benchmarks.transfer import run

    points = run("lat_ms_gold_6226", ["ridge", "sources"], [10, 20], seeds=1, n_test=100, pretrain=200, rows=400)
    assert {(p.n, p.method) for p in points} == {(n, m) for n in (10, 20) for m in ("ridge", "sources")}
    assert all(-1 <= p.spearman <= 1 for p in points)
