"""How fast the dashboard's pages answer over a large store (issue #22's target: 100,000 measurements in ≤ 2 s).

Builds a store of ``--archs`` NB-201 architectures measured on ``--devices`` device keys (latencies made up from
MACs and noise: what is timed is the reading and the plotting data, not the numbers), serves the dashboard with
uvicorn on 127.0.0.1 and times each API a page calls, end to end over HTTP, median of ``--repeats``. With
``--browser`` (Debian's chromium and chromium-driver), it also times each page in headless Chromium: from
asking for the page until its table and every plot are drawn.

    python -m benchmarks.dashboard [--archs 5000] [--devices 20] [--repeats 3] [--browser]
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

from benchmarks.common import machine_line

TARGET_S = 2.0
APIS = ("/api/fleet", "/api/campaigns", "/api/dataset")
# a page is drawn when these elements exist (a table and, on the Dataset page, its three Plotly figures)
PAGES = {"/fleet": ("#content",), "/campaigns": ("#content",),
         "/dataset": ("#devices", "#distribution .main-svg", "#scatter .main-svg", "#heatmap .main-svg")}


def headless_chromium():
    """A Selenium driver of Debian's headless Chromium; RuntimeError naming the packages when they are missing."""
    import shutil

    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        raise RuntimeError("Debian's chromium and chromium-driver are not installed "
                           "(apt-get install chromium chromium-driver)")
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver_path))
    driver.set_page_load_timeout(60)
    return driver


def page_seconds(driver, url: str, selectors: tuple[str, ...], timeout: float = 60.0) -> float:
    """Seconds from asking for the page until every selector matches (checked every 10 ms in the page)."""
    from selenium.webdriver.support.ui import WebDriverWait

    drawn = "return arguments[0].every(s => document.querySelector(s) !== null)"
    t0 = time.perf_counter()
    driver.get(url)
    WebDriverWait(driver, timeout, poll_frequency=0.01).until(lambda d: d.execute_script(drawn, list(selectors)))
    return time.perf_counter() - t0


def build_store(db: Path, archs: int, devices: int, seed: int = 0) -> int:
    from hwnas.controller.spaces import get_space
    from hwnas.controller.spaces.catalog import sample
    from hwnas.controller.store import Store
    from hwnas.controller.store.records import ArchRecord, MeasurementRecord, make_job_key

    space = get_space("nb201")
    rng = np.random.default_rng(seed)
    graphs = {}
    for x in sample(space, archs, seed):
        g = space.to_graph(x)
        graphs.setdefault(g.arch_id, (x, g))
    with Store(db) as store:
        store.add_architectures(ArchRecord(g.arch_id, space.name, space.to_string(x), " ".join(map(str, x)),
                                           g.macs(), g.params(), g.to_json()) for x, g in graphs.values())
        records = (MeasurementRecord(
            job_key=make_job_key(g.arch_id, f"dev-{d}", "onnxruntime", "fixed", {}, 1), arch_id=g.arch_id,
            device_key=f"dev-{d}", backend="onnxruntime", protocol="fixed", protocol_params={}, batch_size=1,
            input_shape=list(g.input_shape), latency_ms=float(1e-7 * g.macs() * (1 + d) * rng.lognormal(0, 0.1)),
            stats={}, agent_name="bench", agent_version="", started_unix_ns=0, finished_unix_ns=0)
            for d in range(devices) for _, g in graphs.values())
        added, _ = store.add_records(records)
    return added


def run(archs: int, devices: int, repeats: int, browser: bool = False, store: Path | None = None) -> dict:
    """Timings over a store of ``archs`` x ``devices`` measurements, built in a temporary folder or at ``store``
    (reused as it is when it exists)."""
    import uvicorn

    from benchmarks.common import free_port
    from hwnas.controller.dashboard.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        db = store or Path(tmp) / "big.db"
        t0 = time.perf_counter()
        if db.exists():  # a store kept from an earlier run: the same data for a side-by-side comparison
            with sqlite3.connect(db) as kept:
                (rows,), = kept.execute("SELECT COUNT(*) FROM measurements")
        else:
            rows = build_store(db, archs, devices)
        built_s = time.perf_counter() - t0
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(db, str(db)), host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        seconds: dict[str, list[float]] = {api: [] for api in APIS}
        pages: dict[str, list[float]] = {page: [] for page in PAGES} if browser else {}
        driver = headless_chromium() if browser else None
        try:
            for _ in range(repeats):
                for api in APIS:  # interleaved, so drift hits all alike
                    t0 = time.perf_counter()
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{api}", timeout=60) as response:
                        response.read()
                    seconds[api].append(time.perf_counter() - t0)
                for page in pages:
                    pages[page].append(page_seconds(driver, f"http://127.0.0.1:{port}{page}", PAGES[page]))
        finally:
            if driver is not None:
                driver.quit()
            server.should_exit = True
            thread.join(10)
    return {"measurements": rows, "build_s": built_s, "median_s": {k: statistics.median(v) for k, v in seconds.items()},
            "page_median_s": {k: statistics.median(v) for k, v in pages.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", type=int, default=5000)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--browser", action="store_true", help="also time each page drawn in headless Chromium")
    parser.add_argument("--store", type=Path, help="build the store here and keep it; reuse it when it exists")
    args = parser.parse_args()
    r = run(args.archs, args.devices, args.repeats, args.browser, args.store)
    print(f"machine: {machine_line()}\n{r['measurements']} measurements (store ready in {r['build_s']:.0f} s)\n")
    print("| API (page) | median s | target |\n|---|---|---|")
    for api, s in r["median_s"].items():
        print(f"| {api} | {s:.3f} | {'met' if s <= TARGET_S else 'NOT met'} (≤ {TARGET_S:g} s) |")
    if r["page_median_s"]:
        print("\n| page drawn in headless Chromium | median s | target |\n|---|---|---|")
        for page, s in r["page_median_s"].items():
            print(f"| {page} | {s:.3f} | {'met' if s <= TARGET_S else 'NOT met'} (≤ {TARGET_S:g} s) |")


if __name__ == "__main__":
    main()
