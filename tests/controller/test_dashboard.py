"""``hwnas dashboard`` in a real browser (Debian's headless Chromium through Selenium) against a real agent
and a live campaign, and its refusals over plain HTTP."""

from __future__ import annotations

import csv
import json
import re
import shutil
import statistics
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import uvicorn

from benchmarks.dashboard import headless_chromium
from hwnas.controller.cli.main import main
from hwnas.controller.dashboard.app import create_app
from hwnas.controller.fleet import campaign, run_campaign
from hwnas.controller.fleet.gateway import Gateway
from hwnas.controller.fleet.local_agent import LocalAgent
from hwnas.controller.store import Store

from ..sync import wait_for
from .test_campaign import NB201, distinct_archs, free_port, plan

TOKEN = "t" * 32


class Served:
    """The dashboard app served by uvicorn on 127.0.0.1 in a thread."""

    def __init__(self, db: Path | str, token: str | None = TOKEN, runs: tuple[Path, ...] | list[Path] = ()) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(create_app(db, str(db), token, runs), host="127.0.0.1",
                                                    port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started and time.time() < deadline:
            time.sleep(0.05)
        assert self.server.started
        self.url = f"http://127.0.0.1:{self.port}"

    def get(self, path: str, token: str | None = TOKEN) -> tuple[int, bytes]:
        request = urllib.request.Request(self.url + path,
                                         headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator:
    try:
        driver = headless_chromium()
    except RuntimeError as exc:
        pytest.skip(f"{exc}; .ci/run installs them")
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def text_of(driver, element_id: str, timeout: float = 15.0) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(expected_conditions.presence_of_element_located((By.ID, element_id)))
    return driver.find_element(By.ID, element_id).text


def table_rows(driver, element_id: str, timeout: float = 15.0) -> list[list[str]]:
    """The table's cells, read in one script call: live pages replace their tables every poll."""
    from selenium.webdriver.support.ui import WebDriverWait

    script = ("const t = document.getElementById(arguments[0]); return t && "
              "[...t.rows].slice(1).map(r => [...r.cells].map(c => c.textContent));")
    return WebDriverWait(driver, timeout).until(lambda d: d.execute_script(script, element_id))


def test_the_pages_follow_a_live_campaign_of_a_real_agent(tmp_path: Path, browser) -> None:
    db = tmp_path / "lab.db"
    n = 6
    with Store(db) as store:
        campaign.enqueue(store, NB201, distinct_archs(n, seed=3), plan(["cpu-k"], count=1200))
    dashboard = Served(db)
    gateway_store = Store(db)
    gateway = Gateway(gateway_store, "127.0.0.1:0", lease_s=5.0).start()
    try:
        browser.get(f"{dashboard.url}/campaigns?token={TOKEN}")  # the token once; a cookie after
        assert table_rows(browser, "campaigns")[0][:4] == ["t", "cpu-k", "0", str(n)]
        with LocalAgent(tmp_path / "c", ["--controller", gateway.address, "--device-key", "cpu-k",
                                         "--name", "lab-pc"], listen=False):
            runner = threading.Thread(target=run_campaign, args=(gateway_store, []),
                                      kwargs={"device_keys": ["cpu-k"], "dial_in": True})
            runner.start()
            seen_done, fleet_seen = set(), False
            deadline = time.time() + 120
            while runner.is_alive() and time.time() < deadline:
                row = table_rows(browser, "campaigns")[0]
                seen_done.add(int(row[2]))
                if not fleet_seen and 0 < int(row[2]) < n:
                    browser.save_screenshot(str(tmp_path / "campaigns.png"))
                    browser.get(f"{dashboard.url}/fleet")
                    agent = table_rows(browser, "fleet")[0]
                    assert agent[:3] == ["lab-pc", "cpu-k", "dialled in"] and agent[6] == "healthy"
                    browser.save_screenshot(str(tmp_path / "fleet.png"))
                    fleet_seen = True
                    browser.get(f"{dashboard.url}/campaigns")
                time.sleep(0.5)
            runner.join(60)
        assert fleet_seen and len(seen_done) >= 3, seen_done  # the page advanced while jobs finished
        final = ["t", "cpu-k", str(n), "0", "0", "0"]
        wait_for(lambda: table_rows(browser, "campaigns")[0][:6] == final, "the next poll to show every job done")

        browser.get(f"{dashboard.url}/dataset")
        [device] = table_rows(browser, "devices")
        with Store(db, read_only=True) as store:
            latencies = [r["latency_ms"] for r in store.measurements()]
            arch_id = next(store.measurements())["arch_id"]
        assert device[:3] == ["cpu-k", str(n), str(n)]
        assert float(device[3]) == pytest.approx(statistics.median(latencies), abs=1e-4)
        from selenium.webdriver.common.by import By

        assert len(browser.find_elements(By.CSS_SELECTOR, "#heatmap .main-svg")) >= 1  # Plotly drew it
        browser.save_screenshot(str(tmp_path / "dataset.png"))

        browser.get(f"{dashboard.url}/arch/{arch_id}")
        assert text_of(browser, "arch-id") == arch_id
        assert len(table_rows(browser, "records")) == 1
        status, onnx = dashboard.get(f"/arch/{arch_id}/model.onnx")
        assert status == 200 and len(onnx) > 1000
        browser.save_screenshot(str(tmp_path / "arch.png"))
    finally:
        gateway.stop()
        gateway_store.close()
        dashboard.stop()
    for name in ("campaigns", "fleet", "dataset", "arch"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000


def test_a_wrong_token_an_unknown_architecture_and_a_broken_store_get_a_clear_status(tmp_path: Path) -> None:
    db = tmp_path / "lab.db"
    Store(db).close()
    good = Served(db)
    try:
        assert good.get("/api/fleet")[0] == 200
        status, body = good.get("/fleet", token="x" * 32)
        assert status == 401 and b"Wrong or missing token" in body
        assert good.get("/fleet", token=None)[0] == 401
        status, body = good.get("/arch/" + "0" * 64)
        assert status == 404 and b"the store holds no architecture" in body
        assert good.get("/api/campaigns") == (200, b"[]")
    finally:
        good.stop()
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not a database" * 100)
    served = Served(broken, token=None)
    try:
        for _ in range(2):  # the server keeps serving
            status, body = served.get("/api/fleet")
            assert status == 503 and b"the store cannot be read" in body
        assert served.get("/arch/" + "0" * 64)[0] == 503
        assert served.get("/static-vendor/plotly.min.js")[0] == 200  # shipped with the install: no CDN
    finally:
        served.stop()


def test_the_command_refuses_what_would_expose_the_store(tmp_path: Path, capsys) -> None:
    db = tmp_path / "lab.db"
    Store(db).close()
    assert main(["dashboard", "--db", str(db), "--host", "0.0.0.0"]) == 2
    assert "serving on 0.0.0.0 needs --token-file" in capsys.readouterr().err
    assert main(["dashboard", "--db", str(tmp_path / "none.db")]) == 2
    assert "no store at" in capsys.readouterr().err
    assert main(["dashboard", "--db", str(db), "--tls-cert", str(db)]) == 2
    assert "--tls-cert and --tls-key go together" in capsys.readouterr().err
    from hwnas.controller.cli.dashboard import shown_store

    assert shown_store("postgresql+psycopg://lab:s3cret@db.lab/hwnas") == "postgresql+psycopg://lab:***@db.lab/hwnas"


def test_a_young_campaigns_rate_is_over_its_age_not_the_whole_window(tmp_path: Path) -> None:
    """2 jobs done within a campaign's first minute is 2 jobs/min (not 2 per 10-minute window), ETA 1 min."""
    from hwnas.controller.dashboard import views
    from hwnas.controller.store.records import MeasurementRecord

    with Store(tmp_path / "lab.db") as store:
        campaign.enqueue(store, NB201, distinct_archs(4, seed=1), plan(["k"]))
        now = time.time() + 60
        for _ in range(2):
            job = store.lease("k", "w", 30, now=now - 30)
            store.complete(MeasurementRecord(
                job_key=job.job_key, arch_id=job.arch_id, device_key="k", backend=job.backend, protocol="fixed",
                protocol_params={}, batch_size=1, input_shape=[1, 3, 32, 32], latency_ms=1.0, stats={},
                agent_name="a", agent_version="", started_unix_ns=0, finished_unix_ns=0), now=now - 30)
        [cell] = views.campaigns(store, now=now)
    assert (cell["done"], cell["queued"], cell["rate_per_min"], cell["eta_min"]) == (2, 2, 2.0, 1.0)


def test_the_searches_pages_show_runs_their_curves_and_fronts(tmp_path: Path, browser) -> None:
    runs = tmp_path / "runs"
    for algo in ("linas", "nsga2"):
        assert main(["search", "--objectives", "flops,accuracy", "--device", "none", "--algo", algo, "--evals", "16",
                     "--population", "8", "--inner-evals", "160", "--db", str(tmp_path / "s.db"), "--out",
                     str(runs / algo), "--quiet"]) == 0
    (runs / "broken").mkdir()
    (runs / "broken" / "run.json").write_text("{not json")
    db = tmp_path / "lab.db"
    Store(db).close()
    dashboard = Served(db, token=None, runs=[runs])
    try:
        browser.get(f"{dashboard.url}/searches")
        listed = table_rows(browser, "runs")
        assert sorted(r[0] for r in listed) == ["linas", "nsga2"] and {r[5] for r in listed} == {"16"}
        assert "broken" in text_of(browser, "content")  # a run that cannot be read is named, not skipped
        from selenium.webdriver.common.by import By

        assert browser.find_elements(By.CSS_SELECTOR, "#plot-a .main-svg")  # the hypervolume curves
        browser.save_screenshot(str(tmp_path / "searches.png"))
        browser.get(f"{dashboard.url}/searches/linas")
        front = table_rows(browser, "front")
        assert len(front) == len((runs / "linas" / "pareto.csv").read_text().splitlines()) - 1 > 0
        assert browser.find_elements(By.CSS_SELECTOR, "#plot-b .main-svg")  # controller time per iteration
        browser.save_screenshot(str(tmp_path / "search-run.png"))
        status, body = dashboard.get("/searches/nothing-here", token=None)
        assert status == 404 and b"No such run" in body and b"nothing-here" in body
    finally:
        dashboard.stop()


def test_an_autogo_run_shows_its_front_and_the_mutation_behind_each_network(tmp_path: Path, trained,
                                                                             browser) -> None:
    segments, psc = trained
    runs = tmp_path / "runs"
    assert main(["autogo", "run", "--zoo", "resnet50", "--resolution", "64", "--metric", "flops", "--iterations", "2",
                 "--parents", "2", "--candidates", "12", "--segments", str(segments), "--predictor", str(psc),
                 "--db", str(tmp_path / "s.db"), "--out", str(runs / "ag"), "--quiet"]) == 0
    with (runs / "ag" / "pareto.csv").open(newline="") as handle:
        front = list(csv.DictReader(handle))
    pictured = [r["arch_id"] for r in front if r["segment"]]
    # a run written before run.json named its kind and columns is still recognised
    shutil.copytree(runs / "ag", runs / "ag-old")
    summary = json.loads((runs / "ag-old" / "run.json").read_text())
    for key in ("kind", "input_name", "metric_column", "minimise"):
        del summary[key]
    (runs / "ag-old" / "run.json").write_text(json.dumps(summary))
    db = tmp_path / "lab.db"
    Store(db).close()
    dashboard = Served(db, token=None, runs=[runs])
    try:
        browser.get(f"{dashboard.url}/searches")
        listed = {r[0]: r for r in table_rows(browser, "autogo-runs")}
        assert set(listed) == {"ag", "ag-old"} and listed["ag"][2] == listed["ag-old"][2] == "macs"
        assert listed["ag"][1] == "resnet50" and listed["ag"][6] == str(len(front))
        browser.get(f"{dashboard.url}/searches/ag")
        shown = table_rows(browser, "front")
        assert sorted(r[0] for r in shown) == sorted(r["arch_id"][:12] for r in front)
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        assert browser.find_elements(By.CSS_SELECTOR, "#plot-a .main-svg")  # the front of the run
        loaded = ("return [...document.querySelectorAll('figure.mutation img')]"
                  ".filter(i => i.complete && i.naturalWidth > 0).length")
        assert WebDriverWait(browser, 15).until(lambda d: d.execute_script(loaded) == len(pictured) or None)
        browser.save_screenshot(str(tmp_path / "autogo-run.png"))
        status, body = dashboard.get(f"/searches/ag/front/{pictured[0]}.png", token=None)
        assert status == 200 and body == (runs / "ag" / "front" / f"{pictured[0]}.png").read_bytes()
        status, body = dashboard.get(f"/searches/ag/front/{front[0]['arch_id']}.onnx", token=None)
        assert status == 200 and body == (runs / "ag" / "front" / f"{front[0]['arch_id']}.onnx").read_bytes()
        status, old = dashboard.get("/api/autogo-run/ag-old", token=None)
        assert status == 200 and len(json.loads(old)["front"]) == len(front)
        (runs / "a-search").mkdir()
        (runs / "a-search" / "run.json").write_text(json.dumps({"config": {}, "objectives": []}))
        status, body = dashboard.get("/api/autogo-run/a-search", token=None)  # a search run is no AutoGO run
        assert status == 404 and b"no AutoGO run 'a-search'" in body
        for bad in ("run.json", "..%2Frun.json", f"{pictured[0]}.json", "ffffffffffff.png"):
            status, body = dashboard.get(f"/searches/ag/front/{bad}", token=None)
            assert status == 404 and b"No such" in body, bad  # no path outside front/ is served
    finally:
        dashboard.stop()


def test_device_rank_correlations_equal_scipys_spearman_over_each_pairs_shared_architectures() -> None:
    from scipy import stats

    from hwnas.controller.dashboard.views import _rank_correlations

    rng = np.random.default_rng(0)
    medians = np.round(rng.lognormal(0, 1, (7, 60)), 1)  # rounded: ties, as whole-millisecond phones give
    medians[1] = medians[0] * 2 + 0.1  # one group of devices over the same architectures, monotone in each other
    medians[4, ::3] = np.nan  # and devices that measured other sets
    medians[5, 10:] = np.nan
    medians[6, :58] = np.nan  # two in common with the rest: too few
    medians[3] = 1.0  # a constant device: no correlation defined
    correlation, common = _rank_correlations(medians)
    for i in range(7):
        for j in range(7):
            both = ~np.isnan(medians[i]) & ~np.isnan(medians[j])
            assert common[i, j] == both.sum()
            expected = stats.spearmanr(medians[i, both], medians[j, both]).statistic if both.sum() >= 3 else np.nan
            np.testing.assert_allclose(correlation[i, j], expected, atol=1e-12, err_msg=f"{i}, {j}")
    assert correlation[0, 1] == pytest.approx(1.0) and np.isnan(correlation[3, 0]) and np.isnan(correlation[6, 0])


def test_the_dataset_scatter_shows_the_same_sampled_networks_on_every_device_with_their_median(
        tmp_path: Path, monkeypatch) -> None:
    from benchmarks.dashboard import build_store
    from hwnas.controller.dashboard import views

    build_store(tmp_path / "s.db", archs=40, devices=3)
    with Store(tmp_path / "s.db") as store:
        columns, archs = store.latency_columns()  # one record per (device, network) here
        truth = {(key, arch): (latency, archs[arch][1]) for key, arch, latency
                 in zip(columns["device_key"], columns["arch_id"], columns["latency_ms"], strict=True)}
        monkeypatch.setattr(views, "SCATTER_POINTS", 10)
        data = views.dataset(store)
    archs = data["scatter_archs"]
    assert len(archs["arch_id"]) == 10  # every device measured the same networks: one sample serves all
    for device in data["devices"]:
        shown = [(archs["arch_id"][i], archs["macs"][i], y)
                 for i, y in zip(device["scatter"]["index"], device["scatter"]["latency_ms"], strict=True)]
        assert len(shown) == 10 and device["architectures"] == len({a for d, a in truth if d == device["device_key"]})
        for arch_id, macs, latency in shown:
            assert (latency, macs) == (pytest.approx(truth[device["device_key"], arch_id][0], abs=1e-6),
                                       truth[device["device_key"], arch_id][1])


def test_a_store_holding_an_infinite_or_negative_latency_from_before_still_shows_its_dataset(tmp_path: Path) -> None:
    """One inf record (stored before records refused them) made the Dataset page answer 503."""
    import sqlite3

    from benchmarks.dashboard import build_store
    from hwnas.controller.dashboard import views

    build_store(tmp_path / "s.db", archs=10, devices=2)
    with sqlite3.connect(tmp_path / "s.db") as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM measurements ORDER BY id")]
        conn.execute("UPDATE measurements SET latency_ms = ? WHERE id = ?", (float("inf"), ids[0]))
        conn.execute("UPDATE measurements SET latency_ms = -5 WHERE id = ?", (ids[1],))
    served = Served(tmp_path / "s.db")
    try:
        status, body = served.get("/api/dataset")
    finally:
        served.stop()
    assert status == 200, body[:300]
    assert json.loads(body)["rows"] == len(ids) - 2  # the two impossible records are left out
    with Store(tmp_path / "s.db") as store:
        assert sum(d["measurements"] for d in views.dataset(store)["devices"]) == len(ids) - 2


def test_the_latency_boxes_carry_their_outliers(tmp_path: Path) -> None:
    """The Dataset page's box plots were drawn from statistics alone and hid their outliers."""
    import sqlite3

    from benchmarks.dashboard import build_store
    from hwnas.controller.dashboard import views

    build_store(tmp_path / "s.db", archs=30, devices=1)
    with sqlite3.connect(tmp_path / "s.db") as conn:
        first = conn.execute("SELECT id, latency_ms FROM measurements ORDER BY id LIMIT 1").fetchone()
        conn.execute("UPDATE measurements SET latency_ms = ? WHERE id = ?", (first[1] * 1000, first[0]))
    with Store(tmp_path / "s.db") as store:
        (device,) = views.dataset(store)["devices"]
    box = device["box"]
    assert box["outlier_count"] >= 1 and max(box["outliers"]) == pytest.approx(first[1] * 1000, rel=1e-6)
    assert all(v < box["lowerfence"] or v > box["upperfence"] for v in box["outliers"])
    assert views._extremes(np.arange(10.0), 4) == [0.0, 1.0, 8.0, 9.0]


def test_the_architecture_page_shows_cold_start_and_the_per_op_profile(tmp_path: Path) -> None:
    """#37: what a deployment engineer reads beside the latency: load, first inference, size, per-op times."""
    db = tmp_path / "ds.db"
    with LocalAgent(tmp_path / "c") as agent:
        assert main(["latbench", "build", "--space", "nb201", "--devices", "k", "--sample", "1", "--seed", "2",
                     "--protocol", "fixed", "--param", "count=5", "--db", str(db), "--quiet",
                     "--no-golden", "--insecure",
                     "--agent", f"k={agent.address}", "--op-profile", "--check-output"]) == 0
    with Store(db) as store:
        (record,) = store.measurements()
    served = Served(db)
    try:
        status, body = served.get(f"/arch/{record['arch_id']}")
    finally:
        served.stop()
    page = body.decode()
    assert status == 200 and "Per-op profile: k (onnxruntime)" in page and "<td>Conv</td>" in page
    assert re.search(r"<td>conv \(node \d+\)</td>", page)  # mapped to the CG by the exporter's names
    assert re.search(r'<td class="output-check">ok \([0-9.e-]+\)</td>', page)  # the output check's verdict
    assert f"<td>{record['model_bytes']}</td>" in page and f"{record['load_ms']:.1f}" in page


def test_the_fleet_page_shows_a_quarantined_key_and_its_golden_checks(tmp_path: Path, browser) -> None:
    from tests.controller.test_scheduler import ARCH, baseline_then_jobs, enqueue, golden_scheduler, measure

    db = tmp_path / "lab.db"
    with Store(db) as store:
        store.add_architectures([ARCH])
        enqueue(store, "c", 0, 10)
        schedule = golden_scheduler(store)
        baseline_then_jobs(schedule)
        assert store.lease("k", "lab-host:7:10.0.0.5:50051", 60) is not None  # another controller's worker
        for latency in (2.0, 2.1):
            measure(schedule, latency, check=True)
        assert "k" in store.quarantined_keys()
    dashboard = Served(db, token=None)
    try:
        browser.get(f"{dashboard.url}/fleet")
        [agent] = table_rows(browser, "fleet")
        assert agent[1] == "k" and agent[6] == "QUARANTINED"
        [key] = table_rows(browser, "golden")
        assert key[:3] == ["k", "quarantined", "5"] and key[4] == "2.1" and "twice in a row" in key[6]
        browser.save_screenshot(str(tmp_path / "fleet-golden.png"))
    finally:
        dashboard.stop()
