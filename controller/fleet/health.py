"""Golden-model health: is a device key still the device its records were measured on?

A lab that runs for weeks unattended drifts: thermal paste dries, a firmware update or a governor change
alters the clocks, a neighbour process appears. Each device key therefore measures one fixed reference
network (``reference_graph``, never part of a search space) at the start of every fleet run, and again every
N jobs or M minutes while it has work (``GoldenPolicy``). The checks form the key's series in the dataset
(records of the reference network, whose architecture is in the space ``golden``).

The first ``baseline_checks`` checks are the key's baseline. A check whose latency lies further than
``threshold`` (relative) outside the baseline's 95 % confidence interval is a suspect; it is checked again
at once, and a second suspect in the same direction is drift (``judge``). Drift puts a warning on the key's
records since its last good check and quarantines the key: it gets no leases until ``hwnas fleet clear KEY``
(``--rebaseline`` when the change is meant, e.g. a new firmware, and the next checks form a new baseline).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

from hwnas.controller.errors import SettingError
from hwnas.controller.graph.builder import GraphBuilder
from hwnas.controller.graph.ir import ComputationGraph

GOLDEN_CAMPAIGN = "golden"  # the campaign of the checks' jobs; reserved, no user campaign may take it
GOLDEN_SPACE = "golden"  # the reference network's ``space`` in the architectures table
GOLDEN_ARCH = "reference-v1"  # its name there; a new reference network would be a new name and a new baseline
# How a check measures: LatBench's doubly trimmed mean of 20 runs of 10 (a few hundred ms on a CPU).
GOLDEN_PROTOCOL = "latbench"
GOLDEN_PARAMS = {"runs": 20.0, "per_run": 10.0}


@cache
def reference_graph() -> ComputationGraph:
    """The reference network: a small ResNet-style CNN (stem, three stages of residual blocks, classifier) of
    the operators every backend runs, long enough (a few ms on a laptop CPU) to time well."""
    b = GraphBuilder((1, 3, 64, 64))
    x = b.conv_bn_act(b.input, 32, 3, 2)
    width = 32
    for out, stride in ((32, 1), (64, 2), (128, 2)):
        y = b.conv_bn_act(x, out, 3, stride)
        y = b.conv_bn_act(y, out, 3, act=None)
        shortcut = b.conv_bn_act(x, out, 1, stride, act=None) if stride != 1 or width != out else x
        x = b.op("relu", b.op("add", y, shortcut))
        width = out
    x = b.op("flatten", b.op("global_avgpool", x))
    return b.build(b.linear(x, 10))


@dataclass(frozen=True)
class GoldenPolicy:
    """When a key measures the reference network, and when its drift quarantines it."""

    every_jobs: int = 200  # a check after this many jobs of the key ...
    every_s: float = 1800.0  # ... or this long after the last one, whichever comes first
    baseline_checks: int = 5  # the key's first checks (at its first start, or after a rebaseline)
    threshold: float = 0.10  # relative distance beyond the baseline's 95 % CI that makes a check a suspect

    def __post_init__(self) -> None:
        if not isinstance(self.every_jobs, int) or self.every_jobs < 1:
            raise SettingError("golden_every_jobs", f"must be a whole number >= 1, got {self.every_jobs!r}")
        if not (math.isfinite(self.every_s) and self.every_s > 0):
            raise SettingError("golden_every_s", f"must be > 0, got {self.every_s!r} seconds")
        if not isinstance(self.baseline_checks, int) or self.baseline_checks < 2:
            raise SettingError("golden_baseline_checks", f"must be a whole number >= 2 (a confidence interval "
                                                         f"needs two), got {self.baseline_checks!r}")
        if not (math.isfinite(self.threshold) and 0 < self.threshold < 1):
            raise SettingError("golden_threshold", f"must be within (0, 1), e.g. 0.1 for 10 %, got "
                                                   f"{self.threshold!r}")


@dataclass(frozen=True)
class Check:
    """One golden check of a key, as recorded."""

    latency_ms: float
    recorded_at_unix_s: float
    agent_name: str = ""


@dataclass(frozen=True)
class Baseline:
    """The mean of the baseline checks with its 95 % confidence interval (Student's t)."""

    mean_ms: float
    low_ms: float
    high_ms: float
    checks: int

    @classmethod
    def of(cls, checks: Sequence[Check]) -> Baseline:
        from scipy import stats

        values = [c.latency_ms for c in checks]
        n = len(values)
        mean = sum(values) / n
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
        return cls(mean, mean - half, mean + half, n)

    def drift(self, latency_ms: float) -> float:
        """How far ``latency_ms`` lies outside the interval, relative to its nearer bound (0 inside;
        positive: slower, negative: faster)."""
        if latency_ms > self.high_ms:
            return latency_ms / self.high_ms - 1
        if latency_ms < self.low_ms:
            return latency_ms / max(self.low_ms, 1e-12) - 1
        return 0.0

    def text(self) -> str:
        return f"{self.mean_ms:.3f} ms (95% CI {self.low_ms:.3f}-{self.high_ms:.3f}, {self.checks} checks)"


@dataclass(frozen=True)
class Verdict:
    """What the latest check says of its key."""

    status: str  # baseline (still forming) | ok | suspect (check again now) | drift (quarantine)
    drift: float = 0.0  # the latest check's, relative to the nearer bound of the baseline's interval
    baseline: Baseline | None = None
    detail: str = ""


def judge(series: Sequence[Check], policy: GoldenPolicy, cleared_at_unix_s: float = 0.0,
          baseline_of: Callable[[Sequence[Check]], Baseline] = Baseline.of) -> Verdict:
    """The verdict on the last check of ``series`` (the key's checks since its baseline began, oldest first).
    A check from before the key's quarantine was cleared (``cleared_at_unix_s``) confirms no suspect: the
    device may have been fixed since. ``baseline_of`` estimates the baseline (``benchmarks.golden`` compares
    estimators on the same series)."""
    if len(series) <= policy.baseline_checks:
        return Verdict("baseline", detail=f"baseline check {len(series)} of {policy.baseline_checks}")
    baseline = baseline_of(series[:policy.baseline_checks])
    latest, previous = series[-1], series[-2]
    drift = baseline.drift(latest.latency_ms)
    said = (f"reference network at {latest.latency_ms:.3f} ms against the baseline {baseline.text()}: "
            f"{drift:+.1%} beyond its interval (threshold {policy.threshold:.0%})")
    if abs(drift) <= policy.threshold:
        return Verdict("ok", drift, baseline, said)
    confirms = len(series) - 1 > policy.baseline_checks and previous.recorded_at_unix_s > cleared_at_unix_s
    before = baseline.drift(previous.latency_ms) if confirms else 0.0
    if abs(before) > policy.threshold and math.copysign(1, before) == math.copysign(1, drift):
        return Verdict("drift", drift, baseline, f"{said}, twice in a row")
    return Verdict("suspect", drift, baseline, said)

