"""One device key's golden checks, as its scheduler runs them: when one is due, queuing it ahead of the key's
work, judging its record, and quarantining the key on drift (the policy and the verdicts: ``fleet.health``)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from functools import cache

from hwnas.controller.fleet.health import (
    GOLDEN_ARCH,
    GOLDEN_CAMPAIGN,
    GOLDEN_PARAMS,
    GOLDEN_PROTOCOL,
    GOLDEN_SPACE,
    Check,
    GoldenPolicy,
    Verdict,
    judge,
    reference_graph,
)
from hwnas.controller.store import ArchRecord, Job, JobSpec, MeasurementRecord, Store

log = logging.getLogger("hwnas.golden")

GOLDEN_PRIORITY = 2**30  # ahead of any campaign's jobs, whichever order the key leases in


@cache
def golden_arch() -> ArchRecord:
    graph = reference_graph()
    return ArchRecord(arch_id=graph.arch_id, space=GOLDEN_SPACE, arch=GOLDEN_ARCH, encoding="", macs=graph.macs(),
                      params=graph.params(), cg_json=graph.to_json())


def golden_spec(like: Job, repeat: str) -> JobSpec:
    """A check of ``like``'s device key, run by the backend and in the format the key's work uses."""
    return JobSpec(campaign=GOLDEN_CAMPAIGN, arch_id=golden_arch().arch_id, device_key=like.device_key,
                   backend=like.backend, protocol=GOLDEN_PROTOCOL, protocol_params=GOLDEN_PARAMS, batch_size=1,
                   priority=GOLDEN_PRIORITY, model_format=like.model_format, submitted_by="golden check",
                   repeat=repeat)


class GoldenChecks:
    """The golden checks of one device key; thread-safe (its workers and the gateway share it)."""

    def __init__(self, store: Store, device_key: str, policy: GoldenPolicy,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.device_key, self.policy, self.clock = store, device_key, policy, clock
        self._lock = threading.Lock()
        self._again = True  # a check is due whatever the count: at start, while the baseline forms, after a suspect
        self._jobs_since = 0
        self._last_check = clock()
        self._pending: str | None = None  # the job key of the check queued or running
        self._off = ""  # why checks stopped for this key (the reference network failed on its backend)

    def job_key_due(self) -> str | None:
        """The job key of a check to lease before the key's other work, queued now if one is due; None when
        none is due (or the one queued is running)."""
        with self._lock:
            if self._off:
                return None
            if self._pending is not None:
                state = self.store.job_states([self._pending]).get(self._pending, ("done", None))
                if state[0] == "queued":
                    return self._pending
                if state[0] == "leased":
                    return None
                if state[0] == "failed":
                    self._off = state[1] or "the check failed"
                    log.warning("golden checks of %s stop: the reference network failed there (%s)",
                                self.device_key, self._off)
                    return None
                self._pending = None  # done, judged by whoever recorded it
            if not (self._again or self._jobs_since >= self.policy.every_jobs
                    or self.clock() - self._last_check >= self.policy.every_s):
                return None
            like = self.store.next_queued(self.device_key)
            if like is None:  # nothing to measure, nothing to vouch for
                return None
            spec = golden_spec(like, repeat=f"check-{time.time_ns()}")
            self.store.add_architectures([golden_arch()])
            self.store.enqueue([spec])
            self._pending = spec.job_key
            return spec.job_key

    def due_after(self, record: MeasurementRecord) -> bool:
        """Whether a check will be due once ``record`` (a job of the key, not a check) is counted."""
        with self._lock:
            return not self._off and (self._again or self._jobs_since + 1 >= self.policy.every_jobs
                                      or self.clock() - self._last_check >= self.policy.every_s)

    def recorded(self, record: MeasurementRecord) -> Verdict | None:
        """Count a record of the key; judge it when it is a check: on drift, warn the records since the key's
        last good check and quarantine the key. Returns the verdict of a check."""
        if record.arch_id != golden_arch().arch_id:
            with self._lock:
                self._jobs_since += 1
            return None
        with self._lock:
            self._jobs_since, self._last_check = 0, self.clock()
            if self._pending == record.job_key:
                self._pending = None
        health = self.store.key_health().get(self.device_key)
        since = health.baseline_from_unix_s if health else 0.0
        series = [Check(row["latency_ms"], row["recorded_at_unix_s"], row["agent_name"])
                  for row in self.store.checks(self.device_key, record.arch_id, since)
                  if (row["backend"], row["model_format"]) == (record.backend, record.model_format)]
        if not series:  # recorded before the baseline's start (a rebaseline raced it): the next check judges
            return None
        verdict = judge(series, self.policy, (health.cleared_at_unix_s or 0.0) if health else 0.0)
        with self._lock:
            self._again = verdict.status in ("suspect", "drift") or len(series) < self.policy.baseline_checks
        good = verdict.status in ("baseline", "ok")
        baseline = verdict.baseline
        self.store.note_check(self.device_key, verdict.status, record.latency_ms, verdict.drift if baseline else None,
                              baseline.text() if baseline else "", series[-1].recorded_at_unix_s if good else None)
        if verdict.status == "drift":
            last_good = health.last_good_unix_s if health and health.last_good_unix_s else since
            warned = self.store.warn_records(self.device_key, last_good, self.warning(verdict.detail),
                                             except_arch_id=record.arch_id)
            self.store.quarantine(self.device_key, verdict.detail)
            log.warning("device key %s is quarantined: %s; %d record(s) since its last good check are warned; "
                        "`hwnas fleet clear %s` lifts it", self.device_key, verdict.detail, warned, self.device_key)
        elif not good:
            log.info("golden check of %s is a suspect, checked again now: %s", self.device_key, verdict.detail)
        return verdict

    @staticmethod
    def is_check(record: MeasurementRecord) -> bool:
        return record.arch_id == golden_arch().arch_id

    def warning(self, reason: str) -> str:
        return f"golden-model drift on {self.device_key}: {reason}"

    def warned(self, record: MeasurementRecord, quarantine: str) -> MeasurementRecord:
        """``record`` with the drift warning, when it settles while its key is quarantined (``quarantine``: why)."""
        if not quarantine or record.arch_id == golden_arch().arch_id:
            return record
        return replace(record, warnings=(*record.warnings, self.warning(quarantine)))



def key_health(store: Store) -> list[dict[str, object]]:
    """Per device key checked or quarantined: its state (quarantined, else the last check's verdict) and why,
    the checks since its baseline began, the baseline, the last check and its drift (``fleet ls``, dashboard)."""
    arch_id = golden_arch().arch_id
    return [{"device_key": key, "state": "quarantined" if row.quarantined else row.last_status or "cleared",
             "reason": row.reason if row.quarantined else "",
             "checks": len(store.checks(key, arch_id, row.baseline_from_unix_s)), "baseline": row.baseline,
             "last_check_ms": None if row.last_check_ms is None else round(row.last_check_ms, 4),
             "drift": None if row.last_drift is None else round(row.last_drift, 4), "cleared_by": row.cleared_by}
            for key, row in sorted(store.key_health().items())]
