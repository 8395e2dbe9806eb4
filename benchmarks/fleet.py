"""The long-lived fleet against the per-batch campaigns it replaced, measured side by side (issue #18).

Runs the same commands from two checkouts, interleaved (A, B, A, B, ...) so that drift of this machine hits
both alike: ``--before DIR`` is a checkout of the earlier code (``git worktree add DIR REV``), the other
is this one. Each round runs, from each checkout:

- ``hwnas search`` (LINAS, ``--evals`` evaluations, population 50) against one replay agent of the packaged
  NB-201 table's Pixel 3 column, into a fresh dataset: wall time of the command, the networks it measured
  (the dataset's records: before the fleet, NB-201 twins counted as evaluations without a measurement), and
  LINAS's controller seconds per iteration from its ``run.json``;
- ``python -m benchmarks.campaign --skip-memory``: dispatch throughput of instant-backend agents.

Every command is a fresh process; the replay agent is shared (it is the same code in both checkouts).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine_line

HERE = Path(__file__).resolve().parent.parent


def search_once(checkout: Path, agent: str, evals: int, seed: int, work: Path) -> tuple[float, float, int]:
    """(wall s of the command, mean controller s per LINAS iteration, networks measured)."""
    out = work / f"run-{checkout.name}-{seed}"
    cmd = [sys.executable, "-m", "hwnas.controller.cli", "search", "--device", "pixel3", "--agent", agent, "--backend",
           "replay", "--algo", "linas", "--evals", str(evals), "--population", "50", "--inner-evals", "5000",
           "--seed", str(seed), "--db", str(out / "store.db"), "--out", str(out), "--insecure", "--quiet"]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout)}, check=True,
                   capture_output=True, text=True)
    wall = time.perf_counter() - t0
    per_iteration = json.loads((out / "run.json").read_text())["controller_seconds_per_iteration"]
    with sqlite3.connect(out / "store.db") as db:
        measured = db.execute("SELECT count(*) FROM measurements").fetchone()[0]
    return wall, statistics.mean(per_iteration) if per_iteration else float("nan"), measured


def dispatch_once(checkout: Path, jobs: int, agents: int) -> float:
    done = subprocess.run([sys.executable, "-m", "benchmarks.campaign", "--skip-memory", "--jobs", str(jobs),
                           "--agents", str(agents)], cwd=checkout, env={**os.environ, "PYTHONPATH": str(checkout)},
                          check=True, capture_output=True, text=True).stdout
    return float(re.search(r"= (\d+) jobs/s", done).group(1))


def summary(values: list[float]) -> str:
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values) if len(values) > 1 else 0:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, required=True, help="checkout of the code to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--evals", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--agents", type=int, default=16)
    args = parser.parse_args()
    from hwnas.controller.data import nb201_table_path
    from hwnas.controller.fleet.local_agent import LocalAgent

    checkouts = {"before": args.before.resolve(), "after": HERE}
    walls: dict[str, list[float]] = {k: [] for k in checkouts}
    iters: dict[str, list[float]] = {k: [] for k in checkouts}
    rates: dict[str, list[float]] = {k: [] for k in checkouts}
    per_network: dict[str, list[float]] = {k: [] for k in checkouts}
    print(f"machine: {machine_line()}\n")
    with tempfile.TemporaryDirectory() as tmp, \
            LocalAgent(Path(tmp) / "cache", ["--backend", "replay", "--table", str(nb201_table_path()),
                                             "--column", "lat_ms_pixel3"]) as agent:
        for r in range(args.rounds):
            order = list(checkouts) if r % 2 == 0 else list(reversed(checkouts))
            for label in order:
                wall, per_it, measured = search_once(checkouts[label], agent.address, args.evals, r, Path(tmp))
                walls[label].append(wall)
                per_network[label].append(wall / measured)
                iters[label].append(per_it)
                rates[label].append(dispatch_once(checkouts[label], args.jobs, args.agents))
                print(f"round {r + 1} {label:6}: search {wall:.1f} s, {measured} networks measured "
                      f"({per_it:.2f} s/iteration), "
                      f"dispatch {rates[label][-1]:.0f} jobs/s", flush=True)
    print()
    for label in checkouts:
        print(f"{label:6}: search {summary(walls[label])} s, {summary(per_network[label])} s per measured network, "
              f"LINAS {summary(iters[label])} s/iteration, dispatch {summary(rates[label])} jobs/s")
    ratio = [a / b for a, b in zip(walls["after"], walls["before"], strict=True)]
    print(f"after/before search wall time, per round: {', '.join(f'{x:.3f}' for x in ratio)} "
          f"(mean {statistics.mean(ratio):.3f})")
    ratio = [a / b for a, b in zip(per_network["after"], per_network["before"], strict=True)]
    print(f"after/before search wall time per measured network: {', '.join(f'{x:.3f}' for x in ratio)} "
          f"(mean {statistics.mean(ratio):.3f})")


if __name__ == "__main__":
    main()
