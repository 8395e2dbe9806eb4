"""Where LINAS loses on NB-201: the same LINAS with a perfect accuracy or latency predictor (issue #6), and
with its latency predictor transferred from the other devices (variant "transfer", issue #39).

LINAS is only as good as the predictors its inner search runs on. This ablation swaps one of them for
the truth - the packaged table's own value of every cell - and counts again the evaluations LINAS needs
to reach the hypervolume NSGA-II reaches at its budget. If the perfect *accuracy* predictor closes the
gap and the perfect *latency* predictor does not, the accuracy predictor is what holds LINAS back. With
both perfect, the inner search runs on the truth itself: the check that selection and search are sound.

To run dozens of searches in minutes, evaluations here are in-process table lookups (latency from the
device column, CIFAR-10 test accuracy from its column: each cell its own row), not agents: this is a
study of the search algorithm, not of the fabric (``benchmarks.search`` measures through real replay
agents). Hypervolume is normalised by the column's and the accuracy's range over the whole table, as in
``benchmarks.search``; every variant of a seed starts from the same first population.

    python -m benchmarks.linas_ablation [--devices pixel3,gold_6226,1080ti_1] [--seeds 3]
                                        [--nsga2-evals 500] [--linas-evals 300]
"""

from __future__ import annotations

import argparse
import functools
import statistics
from collections.abc import Sequence

import numpy as np

from benchmarks.common import machine_line
from benchmarks.search import table_bounds
from hwnas.controller.fleet import Outcome
from hwnas.controller.search.hypervolume import HvSpace
from hwnas.controller.spaces import Candidate
from hwnas.controller.store import MeasurementRecord

ACCURACY = "acc_cifar10_test"
VARIANTS = {"linas": (), "perfect accuracy": ("accuracy",), "perfect latency": ("latency",),
            "perfect both": ("accuracy", "latency")}


@functools.cache
def _rows() -> dict[str, dict[str, str]]:
    from hwnas.controller.data import nb201_table

    return {row["arch_str"]: row for row in nb201_table()}


class TablePredictor:
    """The table's value of each cell: a perfect predictor, for the ablation only."""

    def __init__(self, column: str) -> None:
        self.column = column

    def predict_encodings(self, encodings) -> np.ndarray:
        from hwnas.controller.spaces.nb201 import format_arch_str

        return np.array([float(_rows()[format_arch_str(x)][self.column]) for x in encodings])


class TableMeasurer:
    """Latency of each cell from the device column, as an agent's record would carry it."""

    def __init__(self, column: str) -> None:
        self.column = column
        self._sent: list[Candidate] = []

    def send(self, candidates: Sequence[Candidate]) -> None:
        self._sent += candidates

    def fetch_all(self) -> list[Outcome]:
        sent, self._sent = self._sent, []
        return [Outcome(c.arch_id, self.record(c)) for c in sent]

    def record(self, candidate: Candidate) -> MeasurementRecord:
        return MeasurementRecord(
            job_key=candidate.arch_id, arch_id=candidate.arch_id, device_key=self.column, backend="table",
            protocol="table", protocol_params={}, batch_size=1, input_shape=[], stats={}, agent_name="table",
            latency_ms=float(_rows()[candidate.arch][self.column]), agent_version="", started_unix_ns=0,
            finished_unix_ns=0)


def search(column: str, algo: str, evals: int, seed: int, bounds: HvSpace, perfect: Sequence[str] = (),
           population: int = 50, inner_evals: int = 20_000, accuracy_predictor=None,
           settings: dict | None = None) -> np.ndarray:
    """One search; the hypervolume after each evaluation. ``settings``: more of the algorithm's."""
    from hwnas.controller.search.algorithms import make_algorithm
    from hwnas.controller.search.evaluator import Evaluator
    from hwnas.controller.search.objectives import accuracy_evaluator, get_objectives
    from hwnas.controller.search.problem import SearchProblem, drive
    from hwnas.controller.search.run import HypervolumeLog
    from hwnas.controller.spaces import get_space

    space = get_space("nb201")
    truth = {"accuracy": TablePredictor(ACCURACY), "latency": TablePredictor(column)}
    # the log needs the evaluator, the evaluator reports to the log: ``log`` is bound before any evaluation
    evaluator = Evaluator(space, get_objectives("latency,accuracy"), evals, TableMeasurer(column),
                          accuracy_evaluator(f"nb201:{ACCURACY}", space), lambda batch: log.add(batch))
    log = HypervolumeLog(evaluator, bounds)
    fixed = {name: truth[name] for name in perfect}
    if accuracy_predictor is not None:
        fixed["accuracy"] = accuracy_predictor
    algorithm = make_algorithm(algo, {"population": population, "inner_evals": inner_evals,
                                      "fixed_predictors": fixed, **(settings or {})})
    drive(algorithm, SearchProblem(space, evaluator, seed))
    return np.array(log.values)


def other_devices(column: str, rows: int = 2000) -> list:
    """The other measured NB-201 devices as transfer sources, each on the same ``rows`` random networks (a
    LatBench-sized set a lab has of its older devices; seed 0)."""
    from hwnas.controller.learning.data import space_samples
    from hwnas.controller.learning.device_tables import device_columns
    from hwnas.controller.spaces import get_space

    table = device_columns("nb201")
    picked = np.random.default_rng(0).permutation(len(table.encodings))[:rows]
    samples = space_samples(get_space("nb201"), [table.encodings[k] for k in picked], views=("encoding",))
    return [samples.with_y(y[picked]) for name, y in table.latencies.items() if name != column]


def ablation(devices: Sequence[str], seeds: int, nsga2_evals: int, linas_evals: int, population: int = 50,
             inner_evals: int = 20_000, gennape: str = "", only: Sequence[str] = ()) -> dict:
    """``gennape``: a saved GENNAPE folder; adds the variant "gennape", LINAS with it as accuracy predictor.
    ``only``: run just these variants (NSGA-II runs always: it sets the target)."""
    from hwnas.controller.search.report import evaluations_to_reach

    variants = {name: (perfect, None) for name, perfect in VARIANTS.items() if not only or name in only}
    transfer = not only or "transfer" in only
    if gennape:
        from pathlib import Path

        from hwnas.controller.search.objectives import PredictorAccuracy
        from hwnas.controller.spaces import get_space
        from hwnas.predictors import load

        # one cache of GENNAPE's predictions for every run: each NB-201 network is predicted once
        if not only or "gennape" in only:
            variants["gennape"] = ((), PredictorAccuracy(load(Path(gennape)), get_space("nb201")))
    out: dict = {}
    for device in devices:
        column = f"lat_ms_{device}"
        bounds = table_bounds(column)
        rows = []
        runs = {name: (perfect, accuracy_predictor, {}) for name, (perfect, accuracy_predictor) in variants.items()}
        if transfer:
            runs["transfer"] = ((), None, {"predictors": {"latency": "sources"},
                                           "sources": {"latency": other_devices(column)}})
        for seed in range(seeds):
            target = search(column, "nsga2", nsga2_evals, seed, bounds, population=population)[-1]
            row: dict = {"seed": seed, "nsga2_hv": float(target)}
            for name, (perfect, accuracy_predictor, settings) in runs.items():
                hv = search(column, "linas", linas_evals, seed, bounds, perfect, population, inner_evals,
                            accuracy_predictor, settings)
                row[name] = {"evals_to_reach": evaluations_to_reach(hv, target), "final_hv": float(hv[-1]),
                             "hv_at_200": float(hv[min(199, len(hv) - 1)])}
            rows.append(row)
        out[device] = rows
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", default="pixel3,gold_6226,1080ti_1")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--nsga2-evals", type=int, default=500)
    parser.add_argument("--linas-evals", type=int, default=300)
    parser.add_argument("--gennape", default="", metavar="DIR",
                        help="also run LINAS with this saved GENNAPE as its accuracy predictor")
    parser.add_argument("--only", default="", metavar="NAME[,NAME]",
                        help=f"run only these variants ({', '.join(VARIANTS)}, gennape, transfer); default all")
    args = parser.parse_args()
    print(f"machine: {machine_line()}\n", flush=True)
    result = ablation(args.devices.split(","), args.seeds, args.nsga2_evals, args.linas_evals, gennape=args.gennape,
                      only=[name for name in args.only.split(",") if name])
    names = list(next(iter(result.values()))[0])[2:]
    print(f"| device | seed | NSGA-II hv@{args.nsga2_evals} | " + " | ".join(
        f"{name}: evals to reach (hv@200)" for name in names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for device, rows in result.items():
        for row in rows:
            cells = [f"{row[n]['evals_to_reach'] or 'never'} ({row[n]['hv_at_200']:.4f})" for n in names]
            print(f"| {device} | {row['seed']} | {row['nsga2_hv']:.4f} | " + " | ".join(cells) + " |")
    for name in names:
        reached = [row[name]["evals_to_reach"] for rows in result.values() for row in rows]
        within = sum(1 for r in reached if r is not None and r <= 0.4 * args.nsga2_evals)
        hit = [r for r in reached if r is not None]
        print(f"{name}: reached in {len(hit)}/{len(reached)} runs, within 0.4x in {within}"
              + (f", median {statistics.median(hit)} evaluations" if hit else ""))


if __name__ == "__main__":
    main()
