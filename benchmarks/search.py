"""LINAS vs NSGA-II vs random search on replayed devices, and a live LINAS run (issue #6).

Replay part: NB-201 with CIFAR-10 test accuracy from the packaged table and latency replayed by real
``hwnas-agent --backend replay`` processes from three device columns, several seeds each, every
measurement through the fleet (store, queue, gRPC). Per device and seed: the hypervolume NSGA-II reaches
at its budget (default 500 evaluations), and the number of evaluations LINAS needs to reach it (target
<= 0.4x); random search for reference. All runs of a device share one normalisation: the column's and the
accuracy's range over the whole table.

Live part (``--live``): LINAS and random search with the same budget against a real ONNX Runtime agent on
loopback; their final hypervolumes in one common normalisation.

    python -m benchmarks.search [--devices pixel3,gold_6226,1080ti_1] [--seeds 5] [--nsga2-evals 500]
                                [--linas-evals 300] [--live 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from benchmarks.common import machine_line


def _run(agent_address: str, device: str, algo: str, evals: int, seed: int, work: Path, extra: list[str]) -> Path:
    from hwnas.controller.cli.main import main

    out = work / f"{device}-{algo}-s{seed}"
    code = main(["search", "--device", device, "--agent", agent_address, "--algo", algo, "--evals", str(evals),
                 "--seed", str(seed), "--db", str(work / "store.db"), "--out", str(out), "--quiet", "--insecure",
                 *extra])
    if code != 0:
        raise RuntimeError(f"search {algo} on {device} seed {seed} failed")
    return out


def table_bounds(column: str):
    """Normalisation from the whole table: every run of a device is scored alike."""
    from hwnas.controller.data import nb201_table
    from hwnas.controller.search.hypervolume import HvSpace
    from hwnas.controller.spaces import get_space

    space = get_space("nb201")
    rows = [r for r in nb201_table() if space.has_network(space.from_string(r["arch_str"])) and r[column]]
    latency = [float(r[column]) for r in rows]
    accuracy = [float(r["acc_cifar10_test"]) for r in rows]
    import numpy as np

    return HvSpace(np.array([min(latency), -max(accuracy)]), np.array([max(latency), -min(accuracy)]),
                   np.array([1.1, 1.1]))


def replay(devices: list[str], seeds: int, nsga2_evals: int, linas_evals: int, random_evals: int,
           population: int = 50, inner_evals: int = 20_000, work: Path | None = None) -> dict:
    from hwnas.controller.data import nb201_table_path
    from hwnas.controller.fleet.local_agent import LocalAgent
    from hwnas.controller.search.report import evaluations_to_reach, load_traces

    work = work or Path(tempfile.mkdtemp(prefix="hwnas-search-bench-"))
    out: dict = {"devices": {}}
    for device in devices:
        column = f"lat_ms_{device}"
        extra = ["--backend", "replay", "--population", str(population), "--inner-evals", str(inner_evals)]
        with LocalAgent(work / f"cache-{device}", ["--backend", "replay", "--table", str(nb201_table_path()),
                                                   "--column", column]) as agent:
            runs: dict[str, list[Path]] = {"nsga2": [], "linas": [], "random": []}
            for seed in range(seeds):  # interleaved per seed: drift hits every algorithm alike
                runs["nsga2"].append(_run(agent.address, device, "nsga2", nsga2_evals, seed, work, extra))
                runs["linas"].append(_run(agent.address, device, "linas", linas_evals, seed, work, extra))
                runs["random"].append(_run(agent.address, device, "random", random_evals, seed, work, extra))
        bounds = table_bounds(column)
        traces = {algo: load_traces(folders, bounds)[0] for algo, folders in runs.items()}
        per_seed = []
        for seed in range(seeds):
            target = traces["nsga2"][seed].hypervolume[-1]
            needed = evaluations_to_reach(traces["linas"][seed].hypervolume, target)
            random_needed = evaluations_to_reach(traces["random"][seed].hypervolume, target)
            per_seed.append({"seed": seed, "nsga2_hv": target, "linas_evals": needed, "random_evals": random_needed,
                             "linas_final_hv": traces["linas"][seed].hypervolume[-1],
                             "random_final_hv": traces["random"][seed].hypervolume[-1]})
        iteration_s = [s for folder in runs["linas"] for s in
                       json.loads((folder / "run.json").read_text())["controller_seconds_per_iteration"]]
        out["devices"][device] = {"per_seed": per_seed, "linas_iteration_s": iteration_s,
                                  "folders": {a: [str(f) for f in fs] for a, fs in runs.items()}}
    return out


def live(evals: int, seeds: int = 1, work: Path | None = None) -> dict:
    from hwnas.controller.fleet.local_agent import LocalAgent
    from hwnas.controller.search.report import load_traces

    work = work or Path(tempfile.mkdtemp(prefix="hwnas-search-live-"))
    folders: dict[str, list[Path]] = {"linas": [], "random": []}
    with LocalAgent(work / "cache-ort") as agent:
        for seed in range(seeds):
            for algo in folders:
                folders[algo].append(_run(agent.address, "local-cpu-ort", algo, evals, seed, work, []))
    traces, bounds = load_traces([f for fs in folders.values() for f in fs])
    finals = {algo: [t.hypervolume[-1] for t in traces if t.algo == algo] for algo in folders}
    return {"finals": finals, "bounds": bounds.to_dict()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", default="pixel3,gold_6226,1080ti_1")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--nsga2-evals", type=int, default=500)
    parser.add_argument("--linas-evals", type=int, default=300)
    parser.add_argument("--random-evals", type=int, default=500)
    parser.add_argument("--live", type=int, default=0, metavar="EVALS", help="also the live ORT run")
    args = parser.parse_args()
    print(f"machine: {machine_line()}\n", flush=True)
    if args.seeds:
        result = replay(args.devices.split(","), args.seeds, args.nsga2_evals, args.linas_evals, args.random_evals)
        for device, r in result["devices"].items():
            print(f"{device}: NSGA-II hv@{args.nsga2_evals} -> LINAS evaluations to reach it (random)")
            for s in r["per_seed"]:
                print(f"  seed {s['seed']}: hv {s['nsga2_hv']:.4f}: linas {s['linas_evals']} ({s['random_evals']}); "
                      f"finals linas {s['linas_final_hv']:.4f} random {s['random_final_hv']:.4f}")
            reached = [s["linas_evals"] for s in r["per_seed"] if s["linas_evals"]]
            if reached:
                print(f"  mean ratio over seeds that reached it ({len(reached)}/{len(r['per_seed'])}): "
                      f"{statistics.mean(reached) / args.nsga2_evals:.3f}")
            print(f"  LINAS controller s/iteration: median {statistics.median(r['linas_iteration_s']):.1f}, "
                  f"max {max(r['linas_iteration_s']):.1f}", flush=True)
    if args.live:
        result = live(args.live)
        print(f"live ORT, {args.live} evaluations: final hv {json.dumps(result['finals'])}")


if __name__ == "__main__":
    main()
