"""Measurement protocols: pure functions over a "time one inference" callable.

A protocol decides how many inferences to time and how to reduce them to one
headline latency. It never touches a runtime, a clock or a stop flag: the
``time_one`` callable it receives runs one inference and returns its duration
in nanoseconds (and raises when the measurement must stop). That keeps every
protocol testable with a synthetic callable and identical in-process and
behind the agent.

Warm-up is not part of a protocol's samples: the caller runs it before and
throws those timings away. Each protocol names its default warm-up.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from hwnas.device_agent.errors import InvalidInput
from hwnas.device_agent.stats import NS_PER_MS, iqr_trimmed_mean, trimmed_mean_se

TimeOne = Callable[[], int]


@dataclass(frozen=True)
class ProtocolOutcome:
    latency_ms: float
    samples_ns: list[int]
    details: dict[str, float] = field(default_factory=dict)  # protocol-specific figures, recorded as is


@dataclass(frozen=True)
class Param:
    default: float
    integer: bool
    minimum: float
    help: str


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    params: Mapping[str, Param]
    default_warmup_runs: int
    run: Callable[[TimeOne, Mapping[str, float]], ProtocolOutcome] = field(repr=False)

    def resolve(self, overrides: Mapping[str, float]) -> dict[str, float]:
        """Defaults overlaid by ``overrides``; unknown or out-of-range values are refused."""
        unknown = sorted(set(overrides) - set(self.params))
        if unknown:
            raise InvalidInput(
                f"protocol {self.name!r} has no parameter(s) {unknown}; "
                f"allowed: {sorted(self.params)}"
            )
        resolved: dict[str, float] = {}
        for key, spec in self.params.items():
            value = float(overrides.get(key, spec.default))
            if not math.isfinite(value) or value < spec.minimum:
                raise InvalidInput(
                    f"protocol {self.name!r} parameter {key!r} must be >= {spec.minimum}, got {value}"
                )
            if spec.integer and value != int(value):
                raise InvalidInput(f"protocol {self.name!r} parameter {key!r} must be an integer, got {value}")
            resolved[key] = value
        return resolved


def _latbench(time_one: TimeOne, params: Mapping[str, float]) -> ProtocolOutcome:
    """BRP-NAS / LatBench: R runs of K inferences, IQR-trimmed within and across runs."""
    runs, per_run = int(params["runs"]), int(params["per_run"])
    samples: list[int] = []
    run_means: list[float] = []
    for _ in range(runs):
        run = [time_one() for _ in range(per_run)]
        samples.extend(run)
        run_means.append(iqr_trimmed_mean(run))
    return ProtocolOutcome(latency_ms=iqr_trimmed_mean(run_means) / NS_PER_MS, samples_ns=samples)


def _fixed(time_one: TimeOne, params: Mapping[str, float]) -> ProtocolOutcome:
    """M timed inferences after the warm-up; the headline is their mean."""
    samples = [time_one() for _ in range(int(params["count"]))]
    return ProtocolOutcome(latency_ms=float(np.mean(samples)) / NS_PER_MS, samples_ns=samples)


# Two-sided 95% Student-t quantiles by degrees of freedom; beyond 30 the normal 1.96 is close enough.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        12: 2.179, 15: 2.131, 20: 2.086, 25: 2.060, 30: 2.042}


def t95(dof: int) -> float:
    """The 95% two-sided t quantile, conservative between tabulated degrees of freedom."""
    return _T95[max(k for k in _T95 if k <= dof)] if dof <= 30 else 1.96


def _adaptive(time_one: TimeOne, params: Mapping[str, float]) -> ProtocolOutcome:
    """Blocks of inferences until the trimmed mean of all samples is known to a relative precision.

    After each block of ``block`` inferences (from ``min_blocks`` on), the 95% confidence half-width of
    the IQR-trimmed mean of every timed sample so far (Tukey-McLaughlin standard error, see
    ``stats.trimmed_mean_se``) is compared with ``rel_ci`` times that mean. Stops when it is within, after
    ``max_blocks``, or once the timed inferences add up to ``max_seconds``. The headline is that trimmed
    mean; the half-width, sample and block counts and whether it converged are recorded. (Pure: the time
    cap sums the samples, no clock.)
    """
    block, min_blocks, max_blocks = int(params["block"]), int(params["min_blocks"]), int(params["max_blocks"])
    budget_ns = params["max_seconds"] * 1e9
    samples: list[int] = []
    blocks = 0
    converged = False
    mean = half_width = 0.0
    while blocks < max_blocks:  # a cap is a cap, even below min_blocks
        samples.extend(time_one() for _ in range(block))
        blocks += 1
        if blocks >= min(min_blocks, max_blocks) or sum(samples) >= budget_ns:
            mean, se, kept = trimmed_mean_se(samples)
            half_width = t95(kept - 1) * se
            if mean > 0 and half_width <= params["rel_ci"] * mean:
                converged = True
                break
        if sum(samples) >= budget_ns:
            break
    return ProtocolOutcome(
        latency_ms=mean / NS_PER_MS,
        samples_ns=samples,
        details={"blocks": float(blocks), "samples": float(len(samples)),
                 "ci95_half_width_ms": half_width / NS_PER_MS,
                 "ci95_rel": half_width / mean if mean > 0 else float("inf"), "converged": float(converged)},
    )


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            name="latbench",
            description="BRP-NAS LatBench: runs x per_run inferences, IQR-trimmed mean within and across runs",
            params={
                "runs": Param(100, True, 1, "number of runs"),
                "per_run": Param(10, True, 1, "inferences per run"),
            },
            default_warmup_runs=10,
            run=_latbench,
        ),
        Protocol(
            name="fixed",
            description="warm-up, then `count` timed inferences; headline is their mean",
            params={"count": Param(100, True, 1, "timed inferences")},
            default_warmup_runs=10,
            run=_fixed,
        ),
        Protocol(
            name="adaptive",
            description="blocks until the 95% CI half-width of the trimmed mean is <= rel_ci of it",
            params={
                "block": Param(10, True, 2, "inferences per block"),
                "min_blocks": Param(10, True, 2, "blocks before the first stopping check"),
                "max_blocks": Param(100, True, 2, "cap on blocks"),
                "max_seconds": Param(30, False, 0.0, "cap on the summed time of timed inferences"),
                "rel_ci": Param(0.01, False, 0.0, "target 95% CI half-width / trimmed mean"),
            },
            default_warmup_runs=10,
            run=_adaptive,
        ),
    )
}


def get_protocol(name: str) -> Protocol:
    """Look a protocol up by name; an unknown name is an InvalidInput naming the known ones."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise InvalidInput(f"unknown protocol {name!r}; known: {sorted(PROTOCOLS)}") from None
