"""The dashboard benchmark in a short form (full form: python -m benchmarks.dashboard --browser)."""

import shutil

from benchmarks.dashboard import APIS, PAGES, run


def test_dashboard_benchmark_short_form() -> None:
    browser = bool(shutil.which("chromium") and shutil.which("chromedriver"))
    r = run(archs=40, devices=3, repeats=1, browser=browser)
    assert r["measurements"] % 3 == 0 and r["measurements"] >= 3 * 30  # 40 samples, a few cells prune alike
    assert set(r["median_s"]) == set(APIS) and all(s > 0 for s in r["median_s"].values())
    assert set(r["page_median_s"]) == (set(PAGES) if browser else set())
    assert all(s > 0 for s in r["page_median_s"].values())
