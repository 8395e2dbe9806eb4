"""The dashboard benchmark in a short form (full form: python -m benchmarks.dashboard)."""

from benchmarks.dashboard import APIS, run


def test_dashboard_benchmark_short_form() -> None:
    r = run(archs=40, devices=3, repeats=1)
    assert r["measurements"] % 3 == 0 and r["measurements"] >= 3 * 30  # 40 samples, a few cells prune alike
    assert set(r["median_s"]) == set(APIS) and all(s > 0 for s in r["median_s"].values())
