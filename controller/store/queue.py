"""The job queue: at-least-once execution with exactly-once records.

A job is leased to one worker for a limited time; a lease that expires (worker died, link dropped) puts the
job back in the queue; the record a worker delivers is keyed by the job's unique key, so a job measured
twice still has one row. Every state change is one transaction. Which job goes next is the scheduler's
choice among ``LEASE_ORDERS`` (``hwnas.controller.fleet.scheduler``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, case, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from hwnas.controller.store import schema
from hwnas.controller.store.database import Database
from hwnas.controller.store.dataset import _WARNED
from hwnas.controller.store.records import Job, JobSpec, MeasurementRecord, params_json

STATES = ("queued", "leased", "done", "failed")


# The statements of the per-job hot path, built once with bind parameters: SQLAlchemy then reuses their
# compiled form instead of building and cache-keying a new statement for every job (about half of the
# controller's CPU per job in a dispatch profile).
_j = schema.jobs


def _lease_statement(*order) -> Any:
    """Lease the first queued job of a device key by ``order``, if it is still queued (one statement)."""
    first = select(_j.c.id).where(and_(_j.c.device_key == bindparam("p_key"), _j.c.state == "queued"))
    return (update(_j)
            .where(and_(_j.c.id == first.order_by(*order).limit(1).scalar_subquery(), _j.c.state == "queued"))
            .values(state="leased", lease_owner=bindparam("p_owner"), lease_expires_at_unix_s=bindparam("p_expires"),
                    attempts=_j.c.attempts + 1, updated_at_unix_s=bindparam("p_now"))
            .returning(*_j.c))


# Lease one named job, if it is still queued (a golden check the scheduler put first).
_LEASE_ONE = (update(_j)
              .where(and_(_j.c.job_key == bindparam("p_job"), _j.c.device_key == bindparam("p_key"),
                          _j.c.state == "queued"))
              .values(state="leased", lease_owner=bindparam("p_owner"), lease_expires_at_unix_s=bindparam("p_expires"),
                      attempts=_j.c.attempts + 1, updated_at_unix_s=bindparam("p_now"))
              .returning(*_j.c))


# The orders a scheduler (controller.fleet.scheduler) may lease in, run in SQL so that racing controllers agree.
_LEASES = {
    "priority": _lease_statement(_j.c.priority.desc(), _j.c.id),  # the highest priority first, then the oldest
    "arrival": _lease_statement(_j.c.id),  # the oldest first, priorities ignored
}


_RECORD = insert(schema.measurements)


_DONE = (update(_j).where(_j.c.job_key == bindparam("p_key"))
         .values(state="done", lease_owner=None, lease_expires_at_unix_s=None, last_error=None,
                 updated_at_unix_s=bindparam("p_now")))


class JobQueue(Database):
    """Jobs: enqueued, leased, renewed, completed with their record, failed or given back."""

    def enqueue(self, specs: Iterable[JobSpec], now: float | None = None) -> int:
        """Queue jobs whose key is new; a job already queued, running, done or failed is left alone.

        That makes re-running a campaign command a resume: only the missing work is added.
        """
        now = time.time() if now is None else now
        specs = list(specs)
        with self._tx() as conn:
            existing = set()
            keys = [s.job_key for s in specs]
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                existing.update(conn.execute(select(schema.jobs.c.job_key)
                                             .where(schema.jobs.c.job_key.in_(chunk))).scalars())
            rows = []
            for spec in specs:
                if spec.job_key in existing:
                    continue
                existing.add(spec.job_key)
                rows.append({
                    "job_key": spec.job_key, "campaign": spec.campaign, "arch_id": spec.arch_id,
                    "device_key": spec.device_key, "backend": spec.backend, "model_format": spec.model_format,
                    "op_profile": spec.op_profile, "memory": spec.memory, "output_check": spec.output_check,
                    "submitted_by": spec.submitted_by[:400],
                    "protocol": spec.protocol,
                    "protocol_params_json": params_json(spec.protocol_params), "batch_size": spec.batch_size,
                    "priority": spec.priority, "state": "queued", "attempts": 0,
                    "max_attempts": spec.max_attempts, "created_at_unix_s": now, "updated_at_unix_s": now,
                })
            if rows:
                conn.execute(insert(schema.jobs), rows)
        return len(rows)

    def set_priority(self, campaign: str, priority: int, now: float | None = None) -> int:
        """Re-prioritise a campaign's queued jobs (higher runs first); returns how many changed."""
        now = time.time() if now is None else now
        jobs = schema.jobs
        with self._tx() as conn:
            return conn.execute(update(jobs).where(and_(jobs.c.campaign == campaign, jobs.c.state == "queued",
                                                        jobs.c.priority != priority))
                                .values(priority=priority, updated_at_unix_s=now)).rowcount

    LEASE_ORDERS: tuple[str, ...] = tuple(_LEASES)

    def lease(self, device_key: str, owner: str, lease_s: float, now: float | None = None,
              order: str = "priority", job_key: str | None = None) -> Job | None:
        """The first queued job of ``device_key`` by ``order`` (one of ``LEASE_ORDERS``; the scheduler's
        choice: by default the highest priority, then the oldest), now leased to ``owner``; None if none.
        ``job_key``: that job of the key only, if it is still queued.

        One conditional ``UPDATE ... RETURNING`` (SQLite >= 3.35, PostgreSQL): the job is claimed only if it
        is still queued, so two workers racing for it cannot both get it.
        """
        now = time.time() if now is None else now
        values = {"p_key": device_key, "p_owner": owner, "p_expires": now + lease_s, "p_now": now}
        with self._tx() as conn:
            if job_key is None:
                row = conn.execute(_LEASES[order], values).mappings().first()
            else:
                row = conn.execute(_LEASE_ONE, {**values, "p_job": job_key}).mappings().first()
        return _job(row) if row is not None else None

    def next_queued(self, device_key: str) -> Job | None:
        """The key's oldest queued job, not leased: what the key is measuring these days (backend, format)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(_j).where(and_(_j.c.device_key == device_key, _j.c.state == "queued"))
                               .order_by(_j.c.id).limit(1)).mappings().first()
        return _job(row) if row is not None else None

    def complete(self, record: MeasurementRecord, now: float | None = None) -> bool:
        """Store the record and mark its job done; False if the job already had its record.

        Accepted even from a worker whose lease expired meanwhile: the measurement is real, and the
        unique job key keeps a second delivery (from the worker that re-ran it) from adding a row.
        """
        return self.complete_and_lease(record, None, "", 0.0, now)[0]

    def complete_and_lease(self, record: MeasurementRecord, device_key: str | None, owner: str, lease_s: float,
                           now: float | None = None, order: str = "priority") -> tuple[bool, Job | None]:
        """``complete``, then ``lease`` the owner's next job of ``device_key`` in the same transaction.

        A worker finishing one job and taking the next is the dispatch hot path: one write transaction
        for both halves the commits per job.
        """
        now = time.time() if now is None else now
        row = record.to_row(now)
        done = {"p_key": record.job_key, "p_now": now}
        lease = {"p_key": device_key, "p_owner": owner, "p_expires": now + lease_s, "p_now": now}
        added = True
        try:
            with self._tx() as conn:
                conn.execute(_RECORD, row)
                conn.execute(_DONE, done)
                following = conn.execute(_LEASES[order], lease).mappings().first() if device_key is not None else None
        except IntegrityError:
            added = False
            with self._tx() as conn:  # a duplicate delivery: make sure the job reads done
                m = schema.measurements
                if conn.execute(select(m.c.id).where(m.c.job_key == record.job_key)).first() is None:
                    raise  # not a duplicate: the row was refused, and the job must not read done without it
                conn.execute(_DONE, done)
                following = conn.execute(_LEASES[order], lease).mappings().first() if device_key is not None else None
        return added, _job(following) if following is not None else None

    def renew_owners(self, owners: Sequence[str], lease_s: float, now: float | None = None) -> int:
        """Extend every lease these owners hold (one statement for all of a controller's workers)."""
        now = time.time() if now is None else now
        jobs = schema.jobs
        with self._tx() as conn:
            return conn.execute(update(jobs).where(and_(jobs.c.state == "leased", jobs.c.lease_owner.in_(owners)))
                                .values(lease_expires_at_unix_s=now + lease_s, updated_at_unix_s=now)).rowcount

    def fail(self, job: Job, error: str, permanent: bool, now: float | None = None) -> str:
        """Record a failed attempt; returns the job's new state ('queued' to retry, or 'failed')."""
        now = time.time() if now is None else now
        jobs = schema.jobs
        with self._tx() as conn:
            current = conn.execute(select(jobs.c.state, jobs.c.attempts, jobs.c.max_attempts, jobs.c.lease_owner)
                                   .where(jobs.c.id == job.id)).one()
            if current.state != "leased" or current.lease_owner != job.lease_owner:
                return current.state  # the lease was lost meanwhile: someone else owns the job now
            state = "failed" if permanent or current.attempts >= current.max_attempts else "queued"
            conn.execute(update(jobs).where(jobs.c.id == job.id).values(
                state=state, lease_owner=None, lease_expires_at_unix_s=None, last_error=error[:4000],
                updated_at_unix_s=now))
        return state

    def requeue_expired(self, now: float | None = None) -> int:
        """Leases past their expiry go back to the queue (or fail once out of attempts); returns how many."""
        now = time.time() if now is None else now
        jobs = schema.jobs
        expired = and_(jobs.c.state == "leased", jobs.c.lease_expires_at_unix_s < now)
        with self._tx() as conn:
            failed = conn.execute(update(jobs).where(and_(expired, jobs.c.attempts >= jobs.c.max_attempts)).values(
                state="failed", lease_owner=None, lease_expires_at_unix_s=None, updated_at_unix_s=now,
                last_error="lease expired on the last allowed attempt")).rowcount
            queued = conn.execute(update(jobs).where(expired).values(
                state="queued", lease_owner=None, lease_expires_at_unix_s=None, updated_at_unix_s=now,
                last_error="lease expired: the worker stopped answering")).rowcount
        return failed + queued

    def give_back(self, job: Job, reason: str, now: float | None = None) -> bool:
        """Return one leased job to the queue without spending an attempt (its agent, not the job, failed)."""
        now = time.time() if now is None else now
        jobs = schema.jobs
        with self._tx() as conn:
            return conn.execute(update(jobs).where(and_(jobs.c.id == job.id, jobs.c.state == "leased",
                                                        jobs.c.lease_owner == job.lease_owner))
                                .values(state="queued", lease_owner=None, lease_expires_at_unix_s=None,
                                        attempts=jobs.c.attempts - 1, last_error=reason[:4000],
                                        updated_at_unix_s=now)).rowcount == 1

    def retry_failed(self, campaign: str, device_keys: Sequence[str], now: float | None = None) -> int:
        """Failed jobs of ``campaign`` on ``device_keys`` go back to the queue with fresh attempts; returns how many."""
        now = time.time() if now is None else now
        jobs = schema.jobs
        with self._tx() as conn:
            return conn.execute(update(jobs).where(and_(jobs.c.campaign == campaign, jobs.c.state == "failed",
                                                        jobs.c.device_key.in_(list(device_keys))))
                                .values(state="queued", attempts=0, updated_at_unix_s=now)).rowcount

    def remeasure_warned(self, campaign: str, device_keys: Sequence[str], now: float | None = None) -> int:
        """Done jobs of ``campaign`` on ``device_keys`` whose record is warned lose it and go back to the queue.

        The warned record is deleted in the same transaction that queues its job again, so the job's next
        measurement takes its place (one record per job); returns how many jobs were queued.
        """
        now = time.time() if now is None else now
        jobs, m = schema.jobs, schema.measurements
        warned_keys = (select(m.c.job_key).join(jobs, jobs.c.job_key == m.c.job_key)
                       .where(and_(_WARNED, jobs.c.campaign == campaign, jobs.c.state == "done",
                                   jobs.c.device_key.in_(list(device_keys)))))
        with self._tx() as conn:
            keys = list(conn.execute(warned_keys).scalars())
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                conn.execute(m.delete().where(m.c.job_key.in_(chunk)))
                conn.execute(update(jobs).where(jobs.c.job_key.in_(chunk)).values(
                    state="queued", attempts=0, last_error="re-measured: its record carried warnings",
                    updated_at_unix_s=now))
        return len(keys)

    def failure_causes(self, campaign: str | None = None) -> list[tuple[str, int]]:
        """(last error, number of failed jobs) of failed jobs, most frequent first."""
        jobs = schema.jobs
        query = (select(jobs.c.last_error, func.count()).where(jobs.c.state == "failed")
                 .group_by(jobs.c.last_error).order_by(func.count().desc()))
        if campaign is not None:
            query = query.where(jobs.c.campaign == campaign)
        with self.engine.connect() as conn:
            return [(error or "no error recorded", n) for error, n in conn.execute(query)]

    def release(self, owner: str, now: float | None = None) -> int:
        """Give back every lease ``owner`` holds (a clean stop), without counting an attempt."""
        now = time.time() if now is None else now
        jobs = schema.jobs
        with self._tx() as conn:
            return conn.execute(update(jobs).where(and_(jobs.c.state == "leased", jobs.c.lease_owner == owner))
                                .values(state="queued", lease_owner=None, lease_expires_at_unix_s=None,
                                        attempts=jobs.c.attempts - 1, updated_at_unix_s=now)).rowcount

    def job(self, job_id: int) -> Job | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.jobs).where(schema.jobs.c.id == job_id)).mappings().first()
        return _job(row) if row is not None else None

    # -- reading -------------------------------------------------------------------------------------
    def counts(self, campaign: str | None = None) -> dict[str, dict[str, int]]:
        """{device_key: {state: n}} for all states, zeros included."""
        jobs = schema.jobs
        query = select(jobs.c.device_key, jobs.c.state, func.count()).group_by(jobs.c.device_key, jobs.c.state)
        if campaign is not None:
            query = query.where(jobs.c.campaign == campaign)
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for device, state, n in conn.execute(query):
                out.setdefault(device, dict.fromkeys(STATES, 0))[state] = n
        return out

    def counts_of(self, job_keys: Sequence[str]) -> dict[str, dict[str, int]]:
        """``counts`` of these jobs only (one build's, whatever campaign first queued each)."""
        jobs, out = schema.jobs, {}
        with self.engine.connect() as conn:
            for start in range(0, len(job_keys), 500):
                query = (select(jobs.c.device_key, jobs.c.state, func.count())
                         .where(jobs.c.job_key.in_(list(job_keys[start:start + 500])))
                         .group_by(jobs.c.device_key, jobs.c.state))
                for device, state, n in conn.execute(query):
                    states = out.setdefault(device, dict.fromkeys(STATES, 0))
                    states[state] += n
        return out

    def submitters(self, campaign: str | None = None) -> dict[str, int]:
        """Who submitted the jobs (of a campaign): {submitter: jobs}, most first (the audit trail)."""
        jobs = schema.jobs
        query = select(jobs.c.submitted_by, func.count()).group_by(jobs.c.submitted_by).order_by(func.count().desc())
        if campaign is not None:
            query = query.where(jobs.c.campaign == campaign)
        with self.engine.connect() as conn:
            return {who or "(before audits)": n for who, n in conn.execute(query)}

    def job_states(self, job_keys: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        """{job_key: (state, last error)} of the given jobs that exist."""
        jobs, out = schema.jobs, {}
        with self.engine.connect() as conn:
            for start in range(0, len(job_keys), 500):
                query = (select(jobs.c.job_key, jobs.c.state, jobs.c.last_error)
                         .where(jobs.c.job_key.in_(list(job_keys[start:start + 500]))))
                out.update({key: (state, error) for key, state, error in conn.execute(query)})
        return out

    def leased(self, owner: str | None = None) -> list[Job]:
        """Jobs currently leased, with their owners (who is measuring what); only ``owner``'s if given."""
        query = select(schema.jobs).where(schema.jobs.c.state == "leased")
        if owner is not None:
            query = query.where(schema.jobs.c.lease_owner == owner)
        with self.engine.connect() as conn:
            return [_job(row) for row in conn.execute(query).mappings()]

    def campaign_progress(self, since_unix_s: float) -> list[dict[str, Any]]:
        """Per (campaign, device key, state): how many jobs, how many of them changed state since
        ``since_unix_s`` (for a done state: the recent completion rate), and when the first was queued."""
        jobs = schema.jobs
        recent = func.sum(case((jobs.c.updated_at_unix_s >= since_unix_s, 1), else_=0))
        query = (select(jobs.c.campaign, jobs.c.device_key, jobs.c.state, func.count().label("n"),
                        recent.label("recent"), func.min(jobs.c.created_at_unix_s).label("first_queued"))
                 .group_by(jobs.c.campaign, jobs.c.device_key, jobs.c.state)
                 .order_by(jobs.c.campaign, jobs.c.device_key))
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def failures(self, campaign: str) -> list[tuple[str, str, str]]:
        """(device key, architecture string, last error) of the campaign's failed jobs."""
        jobs, a = schema.jobs, schema.architectures
        query = (select(jobs.c.device_key, a.c.arch, jobs.c.last_error).join(a, a.c.arch_id == jobs.c.arch_id)
                 .where(and_(jobs.c.campaign == campaign, jobs.c.state == "failed")).order_by(jobs.c.id))
        with self.engine.connect() as conn:
            return [(key, arch, error or "no error recorded") for key, arch, error in conn.execute(query)]


def _job(row) -> Job:
    return Job(id=row["id"], job_key=row["job_key"], campaign=row["campaign"], arch_id=row["arch_id"],
               device_key=row["device_key"], backend=row["backend"], protocol=row["protocol"],
               protocol_params=json.loads(row["protocol_params_json"]), batch_size=row["batch_size"],
               attempts=row["attempts"], lease_owner=row["lease_owner"],
               lease_expires_at_unix_s=row["lease_expires_at_unix_s"], state=row["state"],
               model_format=row["model_format"], op_profile=bool(row["op_profile"]), memory=bool(row["memory"]),
               output_check=bool(row["output_check"]))
