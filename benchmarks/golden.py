"""How the golden-model check tells a slowed device key from a noisy one (issue #37).

A real agent measures the reference network by the golden check's own protocol, in rounds; in each round
once unslowed and once under each slowdown, in rotating order (the machine drifts within minutes). The
agent is slowed as a throttled CPU slows it: its threads are put in a cpu cgroup whose CFS quota is a
fraction of the host's cores (cgroup v1 ``cpu.cfs_quota_us``, or v2 ``cpu.max``; needs root). Each
slowdown's size is measured, not assumed: the median ratio of its checks to the unslowed ones.

The policy (``hwnas.controller.fleet.health.judge``) is then replayed on those real series, for each threshold
and baseline estimator:
- **false quarantines**: the unslowed series read as one key's checks, in order (the first checks its
  baseline); every drift verdict is a false quarantine, after which the key starts a new baseline;
- **checks to quarantine**: a baseline of unslowed checks at each position of the series, then that slowdown's
  checks from there on; how many periodic checks pass before the drift verdict (the re-check after a
  suspect comes at once and is not counted). Times ``--golden-every`` (200 jobs by default), that is at
  most how many jobs the key measures slowed before it is quarantined.
- the same with **one loaded check in each baseline** (a check measured beside two busy loops, as a passing
  load on a shared host or a test suite would slow it), and the unslowed series after such a baseline
  (false quarantines), for the shipped estimator (the mean with Student's t interval, ``Baseline.of``) and a
  robust one (the median with a MAD interval) on the same series.

    sudo python -m benchmarks.golden [--rounds 60] [--quotas 0.9,0.7] [--save series.json]
    python -m benchmarks.golden --series series.json   # replay a saved series
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import scipy.stats

from benchmarks.common import machine_line
from hwnas.controller.fleet.client import AgentClient
from hwnas.controller.fleet.health import (
    GOLDEN_PARAMS,
    GOLDEN_PROTOCOL,
    Baseline,
    Check,
    GoldenPolicy,
    judge,
    reference_graph,
)
from hwnas.controller.fleet.local_agent import LocalAgent
from hwnas.controller.graph.onnx_export import to_onnx_bytes

LOADED = "loaded"  # the condition of a check measured beside two busy loops
PERIOD_US = 2000  # the CFS period: short, so a throttled agent stalls inside inferences, as a slow clock would


class Throttle:
    """A cpu cgroup holding the agent's threads; ``set(fraction)`` caps them to that share of the host."""

    def __init__(self, pid: int) -> None:
        v1 = Path("/sys/fs/cgroup/cpu")
        self.v1 = (v1 / "cpu.cfs_quota_us").exists()
        self.path = (v1 if self.v1 else Path("/sys/fs/cgroup")) / f"hwnas-golden-{os.getpid()}"
        try:
            self.path.mkdir(exist_ok=True)
            if self.v1:
                (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            for task in Path(f"/proc/{pid}/task").iterdir():  # threads started later inherit the cgroup
                (self.path / ("tasks" if self.v1 else "cgroup.threads")).write_text(task.name)
        except OSError as exc:
            raise SystemExit(f"benchmarks.golden needs a writable cpu cgroup (run as root): {exc}") from None

    def set(self, fraction: float | None) -> None:
        """Cap the agent at ``fraction`` of the host's cores; None lifts the cap."""
        quota = -1 if fraction is None else max(1000, int(fraction * os.cpu_count() * PERIOD_US))
        if self.v1:
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (self.path / "cpu.max").write_text(f"{'max' if quota < 0 else quota} {PERIOD_US}")

    def close(self) -> None:
        """Lift the cap, hand the threads back to the parent cgroup, and remove this one."""
        self.set(None)
        threads = "tasks" if self.v1 else "cgroup.threads"
        for task in (self.path / threads).read_text().split():
            with contextlib.suppress(OSError):  # a thread that has exited meanwhile
                (self.path.parent / threads).write_text(task)
        self.path.rmdir()

@contextlib.contextmanager
def throttled_agent() -> Iterator[tuple[AgentClient, str, Throttle]]:
    """A real agent process with the reference network uploaded, in a cgroup of its own (removed after)."""
    with tempfile.TemporaryDirectory() as tmp, LocalAgent(Path(tmp)) as agent, AgentClient(agent.address) as client:
        client.wait_ready()
        sha, _ = client.ensure_model(to_onnx_bytes(reference_graph()))
        throttle = Throttle(agent.process.pid)
        try:
            yield client, sha, throttle
        finally:
            throttle.close()


@contextlib.contextmanager
def busy_loops(count: int = 2) -> Iterator[None]:
    """``count`` busy-loop processes beside the agent (not in its cgroup): a passing load on the host."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def measure(rounds: int, quotas: Sequence[float]) -> dict[str, list[float]]:
    """{condition: golden-check latencies in the order measured}; conditions rotate within each round. The
    conditions: unslowed, each quota, and "loaded" (unslowed, two busy loops beside the agent)."""
    conditions: list[float | str | None] = [None, *quotas, LOADED]
    series: dict[str, list[float]] = {name(c): [] for c in conditions}
    with throttled_agent() as (client, sha, throttle):
        for r in range(rounds):
            for c in conditions[r % len(conditions):] + conditions[:r % len(conditions)]:
                throttle.set(c if isinstance(c, float) else None)
                with busy_loops() if c == LOADED else contextlib.nullcontext():
                    result = client.profile(sha, protocol=GOLDEN_PROTOCOL, protocol_params=GOLDEN_PARAMS).result
                series[name(c)].append(result["latency_ms"])
            throttle.set(None)
    return series


def name(condition: float | str | None) -> str:
    if isinstance(condition, float):
        return f"quota {condition:.2f}"
    return "unslowed" if condition is None else condition


def median_baseline(checks: Sequence[Check]) -> Baseline:
    """An alternative, compared and not shipped: the median with the median's interval (Student's t times
    1.2533 sigma / sqrt(n), sigma = 1.4826 MAD), which one loaded check does not widen."""
    values = [c.latency_ms for c in checks]
    n, median = len(values), statistics.median(values)
    sigma = 1.4826 * statistics.median(abs(v - median) for v in values) or statistics.stdev(values)
    half = float(scipy.stats.t.ppf(0.975, n - 1)) * 1.2533 * sigma / math.sqrt(n)
    return Baseline(median, median - half, median + half, n)


ESTIMATORS: dict[str, Callable[[Sequence[Check]], Baseline]] = {"mean": Baseline.of, "median": median_baseline}


def false_quarantines(values: Sequence[float], policy: GoldenPolicy, estimator: str) -> int:
    """Drift verdicts on an unslowed series; after each, the key starts a new baseline (a rebaseline)."""
    count, start = 0, 0
    for k in range(len(values)):
        checks = [Check(v, t) for t, v in enumerate(values[start:k + 1])]
        if judge(checks, policy, baseline_of=ESTIMATORS[estimator]).status == "drift":
            count, start = count + 1, k + 1
    return count


def checks_to_quarantine(unslowed: Sequence[float], slowed: Sequence[float], policy: GoldenPolicy,
                         estimator: str, loaded: Sequence[float] = ()) -> list[int | None]:
    """Per start position: periodic checks of the slowed series after a baseline of unslowed ones until the
    drift verdict (None: never within the series). With ``loaded``, one check of each baseline (at a rotating
    place) is a loaded one: a passing load while the baseline formed."""
    b = policy.baseline_checks
    out: list[int | None] = []
    for start in range(0, len(unslowed) - b + 1):
        formed = list(unslowed[start:start + b])
        if loaded:
            formed[start % b] = loaded[start % len(loaded)]
        checks = [Check(v, t) for t, v in enumerate(formed)]
        found, periodic, verdict = None, 0, ""
        for k, v in enumerate(slowed[start + b:]):
            periodic += verdict != "suspect"  # a check after a suspect is its immediate re-check
            checks.append(Check(v, b + k))
            verdict = judge(checks, policy, baseline_of=ESTIMATORS[estimator]).status
            if verdict == "drift":
                found = periodic
                break
        out.append(found)
    return out


def detection(found: Sequence[int | None]) -> str:
    hits = [n for n in found if n is not None]
    return (f"{len(hits)}/{len(found)} starts, median "
            f"{statistics.median(hits) if hits else float('nan'):.0f} periodic check(s)")


def saved_series(path: Path) -> tuple[dict[str, list[float]], str, list[float]]:
    """The series, machine line and quotas an earlier ``--save`` wrote; SystemExit naming what is wrong."""
    try:
        saved = json.loads(path.read_text())
        series, machine, quotas = saved["series"], saved["machine"], [float(q) for q in saved["quotas"]]
        missing = [name(c) for c in (None, *quotas, LOADED) if name(c) not in series]
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise SystemExit(f"--series {path}: not a series that --save wrote ({type(exc).__name__}: {exc})") from None
    if missing:
        raise SystemExit(f"--series {path}: no checks for {', '.join(missing)}; measure again with --save")
    return series, machine, quotas


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--quotas", default="0.9,0.7", help="the slowdowns: CPU share caps, comma-separated")
    parser.add_argument("--thresholds", default="0.05,0.1,0.2")
    parser.add_argument("--baselines", default="3,5", help="baseline checks to try, comma-separated")
    parser.add_argument("--save", type=Path, help="write the measured series to this JSON file")
    parser.add_argument("--series", type=Path, help="replay the series of an earlier --save (no measuring)")
    args = parser.parse_args(argv)
    started = time.time()
    if args.series:
        series, machine, quotas = saved_series(args.series)
    else:
        quotas = [float(q) for q in args.quotas.split(",")]
        series, machine = measure(args.rounds, quotas), machine_line()
        if args.save:
            args.save.write_text(json.dumps({"machine": machine, "quotas": quotas, "series": series}))
    rounds = len(series["unslowed"])
    source = f"replayed from {args.series}" if args.series else f"measured in {time.time() - started:.0f} s"
    print(f"# {machine}; {rounds} rounds {source}")
    base = statistics.median(series["unslowed"])
    spread = statistics.pstdev(series["unslowed"]) / statistics.mean(series["unslowed"])
    print(f"unslowed: median {base:.3f} ms, check-to-check CV {spread:.1%}")
    for c in [*quotas, LOADED]:
        print(f"{name(c)}: median {statistics.median(series[name(c)]):.3f} ms, slowdown "
              f"{statistics.median(series[name(c)]) / base - 1:+.1%}")
    for baseline, threshold in ((int(b), float(t)) for b in args.baselines.split(",")
                                for t in args.thresholds.split(",")):
        policy = GoldenPolicy(threshold=threshold, baseline_checks=baseline)
        for estimator in ESTIMATORS:
            line = [f"baseline {baseline} ({estimator}), threshold {threshold:.0%}: false quarantines "
                    f"{false_quarantines(series['unslowed'], policy, estimator)} in {rounds} unslowed checks"]
            for loaded in ((), series[LOADED]):  # false quarantines from each start, over the rest of the series
                found = checks_to_quarantine(series["unslowed"], series["unslowed"], policy, estimator, loaded)
                place = "with one loaded check" if loaded else "of unslowed checks"
                line.append(f"unslowed after a baseline {place}: quarantined from {detection(found)}")
            for q in quotas:
                for loaded in ((), series[LOADED]):
                    found = checks_to_quarantine(series["unslowed"], series[name(q)], policy, estimator, loaded)
                    place = " (one loaded check in the baseline)" if loaded else ""
                    line.append(f"{name(q)}{place}: quarantined from {detection(found)}")
            print("; ".join(line))


if __name__ == "__main__":
    main()
