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

from device_agent.errors import InvalidInput
from device_agent.stats import NS_PER_MS, iqr_trimmed_mean

TimeOne = Callable[[], int]


@dataclass(frozen=True)
class ProtocolOutcome:
    latency_ms: float
    samples_ns: list[int]


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


def _adaptive(time_one: TimeOne, params: Mapping[str, float]) -> ProtocolOutcome:
    """Batches of inferences until the median is known to a relative precision.

    After ``min_batches`` batches, stop once the 95% confidence half-width of the
    mean of batch medians falls below ``rel_precision`` of that mean, or after
    ``max_batches``. The headline is the median of all samples. Suits devices
    whose per-inference time spans orders of magnitude across models.
    """
    batch, min_b, max_b = int(params["batch"]), int(params["min_batches"]), int(params["max_batches"])
    rel = params["rel_precision"]
    samples: list[int] = []
    medians: list[float] = []
    for index in range(max(min_b, max_b)):
        run = [time_one() for _ in range(batch)]
        samples.extend(run)
        medians.append(float(np.median(run)))
        if index + 1 >= min_b:
            mean = float(np.mean(medians))
            half_width = 1.96 * float(np.std(medians, ddof=1)) / math.sqrt(len(medians))
            if mean > 0 and half_width / mean <= rel:
                break
    return ProtocolOutcome(latency_ms=float(np.median(samples)) / NS_PER_MS, samples_ns=samples)


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
            description="batches until the median is known to rel_precision (95% CI); headline is the median",
            params={
                "batch": Param(10, True, 2, "inferences per batch"),
                "min_batches": Param(5, True, 2, "batches before the first stopping check"),
                "max_batches": Param(200, True, 2, "hard cap on batches"),
                "rel_precision": Param(0.01, False, 0.0, "target 95% CI half-width / mean"),
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
