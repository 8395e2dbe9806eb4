"""AutoGO's figures: the segment database, the PSC predictor vs a whole-graph GNN, MILP solve time, one
mutation round on ResNet-50, and live runs that measure children on a real onnxruntime agent.

Everything goes through the product's own code and CLI: ``hwnas autogo build-db``, ``train-psc`` and
``run`` against an agent process on loopback (``--protocol fixed``).

    python -m benchmarks.autogo [--samples-per-space 300] [--train 900] [--epochs 40] [--work DIR]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.common import machine_line
from hwnas.controller.autogo.database import SegmentDatabase
from hwnas.controller.autogo.mutation import Mutator, op_classes
from hwnas.controller.autogo.search import PscScorer
from hwnas.controller.cli.main import main as hwnas
from hwnas.controller.fleet.local_agent import LocalAgent
from hwnas.controller.graph.ir import ComputationGraph
from hwnas.controller.graph.zoo import resnet50
from hwnas.predictors import load


def build(work: Path, samples: int, vocab: int, train: int, per_graph: int, epochs: int, valid: int = 100,
          test: int = 500) -> dict:
    """The database and the PSC predictor (with the whole-graph baseline), reused when already in ``work``."""
    out: dict = {}
    if not (work / "segments" / "segments.json").exists():
        started = time.perf_counter()
        assert hwnas(["autogo", "build-db", "--out", str(work / "segments"), "--samples-per-space", str(samples),
                      "--vocab-size", str(vocab), "--quiet"]) == 0
        out["build_db_s"] = time.perf_counter() - started
    if not (work / "psc" / "card.json").exists():
        assert hwnas(["autogo", "train-psc", "--segments", str(work / "segments"), "--out", str(work / "psc"),
                      "--train", str(train), "--valid", str(valid), "--test", str(test), "--per-graph", str(per_graph),
                      "--epochs", str(epochs), "--baseline",
                      "--quiet"]) == 0
    out["database"] = SegmentDatabase.load(work / "segments").summary()
    out["psc"] = json.loads((work / "psc" / "evaluation.json").read_text())
    return out


def mutation_round(work: Path, parent: ComputationGraph, candidates: int = 100, seed: int = 0) -> dict:
    """One parent's round as the search runs it: segment, pick sources, MILP per try, PSC-rank the children."""
    database = SegmentDatabase.load(work / "segments")
    scorer = PscScorer(load(work / "psc"), database)
    mutator = Mutator(database, np.random.default_rng(seed), op_classes(parent))
    started = time.perf_counter()
    children = mutator.mutate(parent, candidates)
    mutate_s = time.perf_counter() - started
    scorer.children(children)
    total_s = time.perf_counter() - started
    solve_ms = [1000 * s for s in mutator.solve_seconds]
    return {"children": len(children), "solves": len(solve_ms), "feasible_share": len(children) / len(solve_ms),
            "milp_median_ms": statistics.median(solve_ms), "milp_p90_ms": float(np.percentile(solve_ms, 90)),
            "mutate_s": mutate_s, "round_s": total_s}


def live(work: Path, agent: LocalAgent, name: str, network: list[str], iterations: int, parents: int,
         measure_per_parent: int, protocol: list[str]) -> dict:
    """``hwnas autogo run`` with latency measured by the agent; the front and the children that beat the input."""
    out = work / f"run-{name}"
    started = time.perf_counter()
    assert hwnas(["autogo", "run", *network, "--device", "bench-ort", "--agent", agent.address, "--insecure",
                  *protocol, "--iterations", str(iterations), "--parents",
                  str(parents), "--measure-per-parent", str(measure_per_parent), "--segments", str(work / "segments"),
                  "--predictor", str(work / "psc"), "--db", str(work / "store.db"), "--out", str(out),
                  "--quiet"]) == 0
    wall = time.perf_counter() - started
    with (out / "all.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    with (out / "pareto.csv").open(newline="") as handle:
        front = list(csv.DictReader(handle))
    root = rows[0]
    better = [r for r in rows[1:] if r["latency_ms"] and float(r["latency_ms"]) < float(root["latency_ms"])
              and float(r["predicted_accuracy"]) >= float(root["predicted_accuracy"])]
    return {"name": name, "evaluated": len(rows), "wall_s": wall, "root": root, "rows": rows, "front": front,
            "better": better,
            "run": json.loads((out / "run.json").read_text())}


def interleaved(root: ComputationGraph, run_dir: Path, count: int, rounds: int, leanest: int = 3) -> dict[str, float]:
    """Median latency over the input's of each front network and of the ``leanest`` lowest-FLOPs children
    predicted at least as accurate as the input; every model measured once per round in a rotating order
    (A, B, C, A, B, C, ...), so a child found faster is not the machine drifting between measurements."""
    import tempfile

    from hwnas.controller.graph.onnx_export import to_onnx_bytes
    from hwnas.device_agent.backends import backend_class
    from hwnas.device_agent.measure import MeasureOptions, measure

    with (run_dir / "all.csv").open(newline="") as handle:
        everything = list(csv.DictReader(handle))
    with (run_dir / "pareto.csv").open(newline="") as handle:
        chosen = [r["arch_id"] for r in csv.DictReader(handle) if r["arch_id"] != root.arch_id]
    as_good = [r for r in everything[1:] if float(r["predicted_accuracy"]) >= float(everything[0]["predicted_accuracy"])
               and r["arch_id"] not in chosen]
    chosen += [r["arch_id"] for r in sorted(as_good, key=lambda r: int(r["macs"]))[:leanest]]
    backend = backend_class("onnxruntime")()
    options = MeasureOptions(protocol="fixed", protocol_params={"count": float(count)})
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"input": Path(tmp) / "input.onnx"}
        paths["input"].write_bytes(to_onnx_bytes(root))
        for arch_id in chosen:
            paths[arch_id] = Path(tmp) / f"{arch_id}.onnx"
            paths[arch_id].write_bytes(to_onnx_bytes(ComputationGraph.from_json(
                (run_dir / "networks" / f"{arch_id}.json").read_text())))
        loaded = {name: backend.load(path, threads=0) for name, path in paths.items()}
        names = list(loaded)
        times: dict[str, list[float]] = {name: [] for name in names}
        for r in range(rounds):
            for name in names[r % len(names):] + names[: r % len(names)]:
                times[name].append(measure(loaded[name], options, None).latency_ms)
    base = statistics.median(times["input"])
    return {name: statistics.median(values) / base for name, values in times.items() if name != "input"}


def best_nb201_cell() -> str:
    from hwnas.controller.data import nb201_table

    rows = [r for r in nb201_table() if r["acc_cifar10_test"] not in ("", "nan")]
    return max(rows, key=lambda r: float(r["acc_cifar10_test"]))["arch_str"]


def _nb201_graph(arch: str) -> ComputationGraph:
    from hwnas.controller.spaces import get_space
    from hwnas.controller.spaces.nb201 import parse_arch_str

    return get_space("nb201").to_graph(parse_arch_str(arch))


def _front_table(result: dict, ratios: dict[str, float]) -> str:
    """The front, then the other re-measured children (the leanest predicted as accurate as the input)."""
    front = {r["arch_id"] for r in result["front"]}
    shown = sorted(result["front"], key=lambda r: float(r["latency_ms"])) + \
        [r for r in result["rows"] if r["arch_id"] in ratios and r["arch_id"] not in front]
    lines = ["| id | on front | iteration | predicted acc. | latency ms (run) | latency vs input, interleaved | "
             "MACs change % |", "|---|---|---|---|---|---|---|"]
    for r in shown:
        ratio = ratios.get(r["arch_id"])
        lines.append(f"| {r['id']} | {'yes' if r['arch_id'] in front else 'no'} | {r['iteration']} | "
                     f"{float(r['predicted_accuracy']):.2f} | {float(r['latency_ms']):.3f} | "
                     f"{'input' if ratio is None else f'{ratio:.3f}x'} | {float(r['macs_change_pct']):+.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("runs/bench-autogo"), help="database, predictor, runs")
    parser.add_argument("--samples-per-space", type=int, default=300)
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument("--train", type=int, default=900)
    parser.add_argument("--per-graph", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--count", type=int, default=25,
                        help="timed inferences per interleaved re-measurement of ResNet-50 (NB-201: ten times more)")
    parser.add_argument("--rounds", type=int, default=21, help="interleaved rounds re-measuring the fronts")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    built = build(args.work, args.samples_per_space, args.vocab_size, args.train, args.per_graph, args.epochs)
    print(f"machine: {machine_line()}\n")
    db, psc = built["database"], built["psc"]
    print(f"segment database: {db['segments']} unique segments ({db['mutable']} mutable, mean {db['mean_nodes']} "
          f"nodes, largest {db['largest']}) from {sum(db['corpus'].values())} networks"
          + (f", built in {built['build_db_s']:.1f} s" if "build_db_s" in built else ""))
    print(f"PSC fold Spearman {psc['psc_fold_srcc']:.3f} ({psc['folds']} folds, {psc['test']} test networks; fit "
          f"{psc['psc_fit_s']:.0f} s on {psc['train_samples']} decompositions of {psc['train']} networks) vs "
          f"whole-graph k-GNN {psc.get('gnn_srcc', float('nan')):.3f} (fit {psc.get('gnn_fit_s', float('nan')):.0f} s)")
    rounds = [mutation_round(args.work, resnet50().canonical(), seed=s) for s in range(3)]
    print("\n| ResNet-50 round (seed) | children | MILPs | feasible | MILP median ms | MILP p90 ms | round s |")
    print("|---|---|---|---|---|---|---|")
    for seed, r in enumerate(rounds):
        print(f"| {seed} | {r['children']} | {r['solves']} | {r['feasible_share']:.0%} | {r['milp_median_ms']:.2f} | "
              f"{r['milp_p90_ms']:.2f} | {r['round_s']:.2f} |")
    # the adaptive protocol: blocks of inferences until the 95% CI of the trimmed mean is within 1%
    inputs = {"nb201-best": (["--space", "nb201", "--arch", best_nb201_cell()], 4, 5, 5, ["--protocol", "adaptive"]),
              "resnet50": (["--zoo", "resnet50"], 4, 4, 4, ["--protocol", "adaptive"])}
    counts = {"nb201-best": 10 * args.count, "resnet50": args.count}  # ~0.7 s and ~1.5 s per re-measurement
    with LocalAgent(args.work / "agent-cache") as agent:
        runs = [live(args.work, agent, name, flags, its, parents, per_parent, protocol)
                for name, (flags, its, parents, per_parent, protocol) in inputs.items()]
    roots = {"nb201-best": _nb201_graph(best_nb201_cell()), "resnet50": resnet50()}
    for result in runs:
        root = result["root"]
        print(f"\n{result['name']}: {result['evaluated']} networks measured in {result['wall_s']:.0f} s; input "
              f"{float(root['latency_ms']):.3f} ms, predicted {float(root['predicted_accuracy']):.2f}; "
              f"{len(result['better'])} children faster at equal or better predicted accuracy (as measured in the run)")
        ratios = interleaved(roots[result["name"]], args.work / f"run-{result['name']}", counts[result["name"]],
                             args.rounds)
        print(_front_table(result, ratios))


if __name__ == "__main__":
    main()
