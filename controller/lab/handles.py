"""What ``Lab``'s calls return at once and settle later: a profile job, a LatBench campaign, a search.

Each runs on the lab's threads; ``wait`` blocks until it settles (``TimeoutError`` past a timeout, the job
going on), ``result`` returns what it made or raises why it could not (``DeviceError``, ``UserError``).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwnas.controller.errors import DeviceError

if TYPE_CHECKING:  # names for annotations only: ``import hwnas`` and ``hwnas.Lab`` load no fleet or store
    from hwnas.controller.fleet.profile import Profiled
    from hwnas.controller.store.records import MeasurementRecord


class _Settling:
    """A future with the waiting calls every handle shares."""

    def __init__(self, future: concurrent.futures.Future) -> None:
        self._future = future

    def done(self) -> bool:
        """True once it has settled, with a result or an error."""
        return self._future.done()

    def wait(self, timeout: float | None = None):
        """Block until it settles; ``TimeoutError`` if ``timeout`` seconds pass first (it goes on running)."""
        concurrent.futures.wait([self._future], timeout)
        if not self._future.done():
            raise TimeoutError(f"{self!r} has not settled after {timeout} s; it goes on: wait again")
        return self

    def _outcome(self, timeout: float | None) -> Any:
        try:
            return self._future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"{self!r} has not settled after {timeout} s; it goes on: wait again") from None


class ProfileJob(_Settling):
    """One model on one device key (``Lab.profile``)."""

    def __init__(self, future: concurrent.futures.Future, model: str, device: str) -> None:
        super().__init__(future)
        self.model, self.device = model, device

    def __repr__(self) -> str:
        state = "done" if self.done() else "running"
        return f"ProfileJob(model={self.model!r}, device={self.device!r}, {state})"

    @property
    def profiled(self) -> Profiled | None:
        """The agent's whole answer (samples, outputs, whether it uploaded), once settled with one."""
        if not self.done() or self._future.exception() is not None:
            return None
        outcome = self._future.result().outcome
        return outcome.profiled if outcome is not None else None

    @property
    def error(self) -> str:
        """Why there is no record, once settled without one; "" otherwise."""
        if not self.done():
            return ""
        failed = self._future.exception()
        if failed is not None:  # the device did not answer, or the model cannot be sent as asked
            return str(failed)
        evaluation = self._future.result()
        if evaluation.outcome is None or evaluation.outcome.record is None or not evaluation.ok:
            return evaluation.error or "no record"
        return ""

    def result(self, timeout: float | None = None) -> MeasurementRecord:
        """The measurement record (``.latency_ms``, ``.to_dict()``): the record a campaign would store.

        ``DeviceError`` when the device could not measure the model, or answered wrongly.
        """
        evaluation = self._outcome(timeout)
        if self.error:
            raise DeviceError(self.device, f"did not measure {self.model}: {self.error}")
        return evaluation.outcome.record


@dataclass(frozen=True)
class CampaignSummary:
    """Where a campaign's jobs ended: counts per device key and state, and the failures by cause."""

    name: str
    counts: Mapping[str, Mapping[str, int]]
    failures: Sequence[tuple[str, int]] = ()
    quarantined: Mapping[str, str] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return sum(c.get("done", 0) for c in self.counts.values())

    @property
    def failed(self) -> int:
        return sum(c.get("failed", 0) for c in self.counts.values())


class Campaign(_Settling):
    """A LatBench build (``Lab.latbench``): its jobs are in the store, and the lab's agents measure them.

    ``progress()`` reads the store's counts now; ``result()`` is the summary once no job is left queued.
    Stopping the lab stops the campaign; the same call on a new lab resumes it (jobs are keyed by what they
    measure, so nothing is measured twice).
    """

    def __init__(self, future: concurrent.futures.Future, name: str, job_keys: Sequence[str],
                 counts: Callable[[Sequence[str]], Mapping[str, Mapping[str, int]]], added: int = 0) -> None:
        super().__init__(future)
        self.name, self._counts, self.added = name, counts, added  # added: jobs this call queued anew
        self.job_keys = list(dict.fromkeys(job_keys))  # NB-201's isomorphic twins are one job

    def __repr__(self) -> str:
        return f"Campaign({self.name!r}, {len(self.job_keys)} jobs, {'done' if self.done() else 'running'})"

    def progress(self) -> dict[str, dict[str, int]]:
        """This campaign's jobs per device key and state (queued, leased, done, failed), read now."""
        return {key: dict(states) for key, states in self._counts(self.job_keys).items()}

    def summary(self, timeout: float | None = None) -> CampaignSummary:
        """The summary once every reachable job has settled, quarantined keys included (``result`` raises)."""
        return self._outcome(timeout)

    def result(self, timeout: float | None = None) -> CampaignSummary:
        """The summary once every reachable job has settled (``DeviceError`` if a key was quarantined)."""
        summary = self.summary(timeout)
        if summary.quarantined:
            key, why = next(iter(summary.quarantined.items()))
            raise DeviceError(key, f"was quarantined ({why}); its jobs stay queued: check the device, then "
                                   f"`hwnas fleet clear {key}` and run the campaign again")
        return summary


@dataclass(frozen=True)
class SearchResult:
    """A finished search: its measured Pareto front, the hypervolume after each evaluation, and its folder."""

    front: Any  # pandas.DataFrame of pareto.csv: arch, encoding, arch_id and one column per objective
    hypervolume: float  # the final hypervolume of the measured front (normalised to the run's bounds)
    hypervolumes: Sequence[float]
    evaluations: int
    out: Path  # run.json, measured.csv, pareto.csv and the plots (docs/search.md)
    failures: Sequence[tuple[str, int]] = ()  # failed evaluations by cause, most frequent first


class Search(_Settling):
    """A search running on the lab's agents (``Lab.search``)."""

    def __init__(self, future: concurrent.futures.Future, name: str) -> None:
        super().__init__(future)
        self.name = name

    def __repr__(self) -> str:
        return f"Search({self.name!r}, {'done' if self.done() else 'running'})"

    def result(self, timeout: float | None = None) -> SearchResult:
        return self._outcome(timeout)
