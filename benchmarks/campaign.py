"""Campaign benchmarks (issue #4): controller dispatch rate and campaign memory.

1. dispatch: 16 agent processes on 127.0.0.1 with the ``instant`` backend (runs nothing; named as such),
   4 device keys x 4 agents, ``fixed`` protocol with 1 inference and no warm-up: jobs recorded per second
   by the controller, end to end (lease, profile RPC, record). Target >= 300 jobs/s.
2. memory: peak RSS of the controller process enqueueing the whole NB-201 space (15,284 connected cells)
   for 2 device keys into a fresh SQLite store. Target < 1 GB.

    python -m benchmarks.campaign [--jobs 4000] [--agents 16]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import machine_line


def dispatch(jobs: int, agents: int, keys: int = 4) -> dict:
    from hwnas.controller.fleet import AgentEndpoint, campaign, run_campaign
    from hwnas.controller.fleet.local_agent import LocalAgent
    from hwnas.controller.spaces import get_space
    from hwnas.controller.store import Store

    space = get_space("nb201")
    archs = [x for x in (space.from_index(i) for i in range(200)) if space.is_connected(x)][:20]
    variants = -(-jobs // (len(archs) * keys))
    with tempfile.TemporaryDirectory() as tmp:
        fleet = [LocalAgent(Path(tmp) / f"c{k}", ["--backend", "instant"]) for k in range(agents)]
        try:
            with Store(Path(tmp) / "ds.db") as store:
                device_keys = [f"key{k}" for k in range(keys)]
                for v in range(variants):
                    campaign.enqueue(store, space, archs, campaign.CampaignPlan(
                        campaign="bench", device_keys=device_keys, backend="instant", protocol="fixed",
                        protocol_params={"count": 1 + v}))
                total = sum(sum(c.values()) for c in store.counts().values())
                endpoints = [AgentEndpoint(device_keys[k % keys], a.address) for k, a in enumerate(fleet)]
                t0 = time.perf_counter()
                run_campaign(store, endpoints, lease_s=60, isolated=device_keys)  # instant: no timing
                wall = time.perf_counter() - t0
                done = sum(c["done"] for c in store.counts().values())
        finally:
            for agent in fleet:
                agent.stop()
    return {"jobs": total, "done": done, "wall_s": wall, "jobs_per_s": done / wall}


def memory_child() -> None:
    """Runs in a fresh process so its peak RSS is the campaign's alone."""
    from hwnas.controller.fleet import campaign
    from hwnas.controller.spaces import get_space
    from hwnas.controller.store import Store

    space = get_space("nb201")
    archs = [x for x in space.enumerate() if space.is_connected(x)]
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "ds.db") as store:
        t0 = time.perf_counter()
        added = campaign.enqueue(store, space, archs,
                                 campaign.CampaignPlan(campaign="mem", device_keys=["a", "b"])).added
        wall = time.perf_counter() - t0
        db_mb = (Path(tmp) / "ds.db").stat().st_size / 1e6
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{len(archs)} {added} {peak_mb:.0f} {db_mb:.0f} {wall:.0f}")


def memory() -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.campaign", "--memory-child"], capture_output=True,
                         text=True, check=True).stdout.split()
    archs, jobs, peak, db, wall = (int(float(v)) for v in out)
    return {"archs": archs, "jobs": jobs, "peak_rss_mb": peak, "db_mb": db, "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--agents", type=int, default=16)
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    if args.memory_child:
        memory_child()
        return
    print(f"machine: {machine_line()}\n")
    d = dispatch(args.jobs, args.agents)
    print(f"dispatch: {d['done']}/{d['jobs']} jobs over {args.agents} instant-backend agents in {d['wall_s']:.1f} s "
          f"= {d['jobs_per_s']:.0f} jobs/s")
    if not args.skip_memory:
        m = memory()
        print(f"memory: enqueue {m['archs']} NB-201 cells x 2 keys ({m['jobs']} jobs) in {m['wall_s']} s: "
              f"peak RSS {m['peak_rss_mb']} MB, store {m['db_mb']} MB")


if __name__ == "__main__":
    main()
