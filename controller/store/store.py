"""The durable store: SQLite (WAL) by default, any SQLAlchemy URL (PostgreSQL) for shared labs.

The job queue gives at-least-once execution and exactly-once records: a job is leased to one worker
for a limited time; a lease that expires (worker died, link dropped) puts the job back in the queue;
the record a worker delivers is keyed by the job's unique key, so a job measured twice still has one
row. Every state change is one transaction.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, OperationalError

from controller.store import schema
from controller.store.records import ArchRecord, Job, JobSpec, MeasurementRecord, RegisteredAgent, params_json

STATES = ("queued", "leased", "done", "failed")


class SchemaError(RuntimeError):
    """The database was written by a newer hwnas, or is not an hwnas store."""


class StoreOpenError(RuntimeError):
    """The database cannot be opened: an unwritable path, a server that does not answer, bad credentials."""


class StoreUnavailable(RuntimeError):
    """The open database failed a read or write: disk full, read-only, locked, gone. The message names both."""


# What SQLite's messages mean for a user, and what to do about it.
_CAUSES = (
    ("database or disk is full", "the disk is full; free space on it, then run the command again"),
    ("readonly database", "it is read-only; `hwnas latbench status` and `export` can still read it"),
    ("database is locked", "another process held its write lock for more than 30 s; retry when it is done"),
    ("disk i/o error", "a disk I/O error (is the disk full, or gone?)"),
    ("unable to open database file", "the file (or its -wal/-shm companion) cannot be opened"),
)


FULL_BELOW_BYTES = 1 << 20  # a dataset's disk with less free space than this is called full


def explain(error: BaseException, path: Path | None = None) -> str:
    """A database error's cause in words, with the driver's message; ``path``: the SQLite file, if any."""
    text = str(getattr(error, "orig", None) or error)
    if path is not None and "disk i/o error" in text.lower():
        with contextlib.suppress(OSError):  # SQLite says "I/O error" when it cannot grow the -shm file
            if shutil.disk_usage(path.parent).free < FULL_BELOW_BYTES:
                text = f"database or disk is full: {text}"
    for needle, meaning in _CAUSES:
        if needle in text.lower():
            return f"{meaning} ({text})"
    return text


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for a server's URL or an in-memory database."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").partition("?")[0]
    return Path(path) if path and path != ":memory:" else None


def writable(path: Path) -> bool:
    """Whether SQLite can write the dataset at ``path``: the file, its folder and any -wal/-shm companion.

    An unwritable -shm mapped for writing ends in SIGBUS, so a dataset with any unwritable part is opened
    read-only. ``os.access`` also sees read-only mounts and immutable files, even for root.
    """
    parts = [path, path.parent] + [p for p in (Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
    return all(os.access(p, os.W_OK) for p in parts if p.exists())


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Python's sqlite3 (before 3.12) commits DDL on its own, outside the transaction; turn that off and
    # begin transactions ourselves (_sqlite_begin), so creating the schema is atomic: another process
    # opening the file meanwhile sees no tables or all of them, never an empty schema_version.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL mode
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_read_only_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None
    dbapi_connection.execute("PRAGMA busy_timeout=30000")


_BEGIN = "hwnas_begin"  # Connection.info key: how the next SQLite transaction begins


def _sqlite_begin(conn) -> None:
    conn.exec_driver_sql(conn.info.pop(_BEGIN, "BEGIN"))


def database_url(target: str | Path) -> str:
    """A path becomes a SQLite URL; anything with '://' is taken as a SQLAlchemy URL."""
    text = str(target)
    return text if "://" in text else f"sqlite:///{Path(text).expanduser().resolve()}"


class Store:
    """The dataset. ``read_only`` opens it for reading only (status, export): no schema upgrade, no writes.

    A read-only SQLite dataset whose files this process cannot write (a read-only mount, an immutable
    file) is opened as immutable: SQLite then takes no locks and maps no -shm file.
    """

    def __init__(self, target: str | Path, read_only: bool = False) -> None:
        self.url = database_url(target)
        self.read_only = read_only
        self.where = make_url(self.url).render_as_string(hide_password=True)
        path = sqlite_path(self.url)
        if path is not None and not read_only:
            try:  # a new dataset may name a folder that does not exist yet, as --out does
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreOpenError(f"cannot create the folder of the dataset {target}: {exc}") from None
            if path.exists() and not writable(path):
                raise StoreOpenError(f"the dataset {path} is read-only (the file, its folder or its -wal/-shm "
                                     f"files cannot be written); `hwnas latbench status` and `export` can still "
                                     f"read it")
        # A campaign has a worker (and a lease keeper) per agent plus the gateway's threads, all on the store.
        self.path = path
        try:
            if path is not None and read_only:
                self.engine = self._open_read_only(path)
            else:
                self.engine: Engine = create_engine(self.url, pool_size=16, max_overflow=64)
                if self.engine.dialect.name == "sqlite":
                    event.listen(self.engine, "connect", _sqlite_pragmas)
                    event.listen(self.engine, "begin", _sqlite_begin)
                self._migrate()
        except OperationalError as exc:
            self.engine.dispose()
            raise StoreOpenError(f"cannot open the dataset at {self.where}: {explain(exc, path)}") from None
        event.listen(self.engine, "handle_error", self._unavailable)

    def _open_read_only(self, path: Path) -> Engine:
        """SQLite read-only (``mode=ro``); immutable where that cannot work and no -wal holds unread rows.

        ``mode=ro`` still needs the -shm file (it fails on a full disk, and an unwritable -shm risks SIGBUS);
        ``immutable=1`` maps nothing and takes no locks, but would not see rows still in a -wal file.
        """
        wal = Path(f"{path}-wal")
        pending_wal = wal.exists() and wal.stat().st_size > 0
        modes = ["mode=ro", "immutable=1"] if writable(path) else ["immutable=1"]
        if pending_wal:
            modes = ["mode=ro"]
        for k, mode in enumerate(modes):
            self.engine = create_engine(f"sqlite:///file:{path}?{mode}&uri=true")
            event.listen(self.engine, "connect", _sqlite_read_only_pragmas)
            try:
                self._check_schema()
                return self.engine
            except OperationalError:
                self.engine.dispose()
                if k == len(modes) - 1:
                    raise
        raise AssertionError("unreachable")

    def _unavailable(self, context) -> None:
        """Every later OperationalError (disk full, read-only, locked) becomes one StoreUnavailable naming the
        dataset and the cause; constraint violations (IntegrityError) are left to the code that expects them."""
        if isinstance(context.sqlalchemy_exception, OperationalError):
            raise StoreUnavailable(f"the dataset {self.where} failed: "
                                   f"{explain(context.original_exception, self.path)}")

    def close(self) -> None:
        self.engine.dispose()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A write transaction. On SQLite it takes the write lock up front (BEGIN IMMEDIATE): a transaction
        that reads before it writes then waits its turn (busy_timeout) instead of failing with "database is
        locked" when another process or thread wrote meanwhile."""
        with self.engine.connect() as conn:
            if self.engine.dialect.name == "sqlite":
                conn.info[_BEGIN] = "BEGIN IMMEDIATE"
            with conn.begin():
                yield conn

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- schema ------------------------------------------------------------------------------------
    def _migrate(self) -> None:
        with self._tx() as conn:
            if not self.engine.dialect.has_table(conn, "schema_version"):
                schema.metadata.create_all(conn)
                conn.execute(insert(schema.schema_version).values(version=schema.SCHEMA_VERSION))
                return
            version = conn.execute(select(func.max(schema.schema_version.c.version))).scalar()
            if version is None:
                raise SchemaError(f"{self.url} has an empty schema_version table: not an hwnas store")
            if version > schema.SCHEMA_VERSION:
                raise SchemaError(f"{self.url} has schema v{version}, newer than this hwnas (v{schema.SCHEMA_VERSION})"
                                  "; upgrade hwnas")
            while version < schema.SCHEMA_VERSION:
                schema.MIGRATIONS[version](conn)
                version += 1
                conn.execute(insert(schema.schema_version).values(version=version))

    def _check_schema(self) -> None:
        """A read-only open: the schema must already be this hwnas's (upgrading it would write)."""
        with self.engine.connect() as conn:
            if not self.engine.dialect.has_table(conn, "schema_version"):
                raise SchemaError(f"{self.where} is not an hwnas dataset (no schema_version table)")
            version = conn.execute(select(func.max(schema.schema_version.c.version))).scalar()
        if version != schema.SCHEMA_VERSION:
            raise SchemaError(f"{self.where} has schema v{version}, this hwnas reads v{schema.SCHEMA_VERSION}; "
                              f"open it once with write access (e.g. `hwnas latbench build`) to upgrade it")

    @property
    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(schema.schema_version.c.version))).scalar())

    # -- architectures and jobs ----------------------------------------------------------------------
    def add_architectures(self, archs: Iterable[ArchRecord]) -> int:
        """Insert the architectures not yet known; returns how many were new."""
        added = 0
        with self._tx() as conn:
            known = set()
            for arch in archs:
                if arch.arch_id in known:
                    continue
                known.add(arch.arch_id)
                exists = conn.execute(select(schema.architectures.c.arch_id)
                                      .where(schema.architectures.c.arch_id == arch.arch_id)).first()
                if exists is None:
                    conn.execute(insert(schema.architectures).values(**vars(arch)))
                    added += 1
        return added

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

    def lease(self, device_key: str, owner: str, lease_s: float, now: float | None = None) -> Job | None:
        """The highest-priority, oldest queued job of ``device_key``, now leased to ``owner``; None if none.

        One conditional ``UPDATE ... RETURNING`` (SQLite >= 3.35, PostgreSQL): the job is claimed only if it
        is still queued, so two workers racing for it cannot both get it.
        """
        now = time.time() if now is None else now
        with self._tx() as conn:
            row = conn.execute(_LEASE, {"p_key": device_key, "p_owner": owner, "p_expires": now + lease_s,
                                        "p_now": now}).mappings().first()
        return _job(row) if row is not None else None

    def complete(self, record: MeasurementRecord, now: float | None = None) -> bool:
        """Store the record and mark its job done; False if the job already had its record.

        Accepted even from a worker whose lease expired meanwhile: the measurement is real, and the
        unique job key keeps a second delivery (from the worker that re-ran it) from adding a row.
        """
        return self.complete_and_lease(record, None, "", 0.0, now)[0]

    def complete_and_lease(self, record: MeasurementRecord, device_key: str | None, owner: str, lease_s: float,
                           now: float | None = None) -> tuple[bool, Job | None]:
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
                following = conn.execute(_LEASE, lease).mappings().first() if device_key is not None else None
        except IntegrityError:
            added = False
            with self._tx() as conn:  # a duplicate delivery: make sure the job reads done
                conn.execute(_DONE, done)
                following = conn.execute(_LEASE, lease).mappings().first() if device_key is not None else None
        return added, _job(following) if following is not None else None

    def renew_owners(self, owners: Sequence[str], lease_s: float, now: float | None = None) -> int:
        """Extend every lease these owners hold (one statement for all of a controller's workers)."""
        now = time.time() if now is None else now
        jobs = schema.jobs
        with self._tx() as conn:
            return conn.execute(update(jobs).where(and_(jobs.c.state == "leased", jobs.c.lease_owner.in_(owners)))
                                .values(lease_expires_at_unix_s=now + lease_s, updated_at_unix_s=now)).rowcount

    def add_records(self, records: Iterable[MeasurementRecord], now: float | None = None) -> tuple[int, int]:
        """Insert records that have no job (imported tables); returns (added, duplicates skipped)."""
        now = time.time() if now is None else now
        rows = [r.to_row(now) for r in records]
        with self._tx() as conn:
            known: set[str] = set()
            keys = [row["job_key"] for row in rows]
            for start in range(0, len(keys), 500):
                known.update(conn.execute(select(schema.measurements.c.job_key)
                                          .where(schema.measurements.c.job_key.in_(keys[start:start + 500]))).scalars())
            fresh = []
            for row in rows:
                if row["job_key"] not in known:
                    known.add(row["job_key"])
                    fresh.append(row)
            if fresh:
                conn.execute(insert(schema.measurements), fresh)
        return len(fresh), len(rows) - len(fresh)

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

    # -- agents that dial in ---------------------------------------------------------------------------
    def register_agent(self, agent: RegisteredAgent, device_info_json: str) -> None:
        """Insert or refresh an agent's registration (an agent re-registers after a controller restart).

        A silent registration under the same device key and name is the dead former life of a restarted
        agent: it is dropped, so `fleet ls` does not list every restart forever.
        """
        row = {**vars(agent), "device_info_json": device_info_json}
        a = schema.agents
        with self._tx() as conn:
            conn.execute(delete(a).where(a.c.agent_id == agent.agent_id))
            conn.execute(delete(a).where(and_(a.c.device_key == agent.device_key, a.c.name == agent.name,
                                              a.c.last_seen_at_unix_s + a.c.lease_s < agent.last_seen_at_unix_s)))
            conn.execute(insert(schema.agents).values(**row))

    def heartbeat(self, agent_id: str, job_id: int = 0, now: float | None = None) -> bool | None:
        """Mark the agent seen and extend the lease of the job it says it holds; None if the agent is unknown.

        Returns whether that lease was still the agent's. Any other job leased to the agent was dropped by it
        (a model it could not fetch, a job its former connection leased): that one goes back to the queue
        now, its attempt spent, rather than being kept alive by the heartbeats. A job leased in the last
        half lease is spared: the heartbeat may have left before the agent had the LeaseJob reply naming it.
        """
        now = time.time() if now is None else now
        agents, jobs = schema.agents, schema.jobs
        with self._tx() as conn:
            lease_s = conn.execute(update(agents).where(agents.c.agent_id == agent_id)
                                   .values(last_seen_at_unix_s=now).returning(agents.c.lease_s)).scalar()
            if lease_s is None:
                return None
            mine = and_(jobs.c.state == "leased", jobs.c.lease_owner == agent_id)
            kept = job_id != 0 and conn.execute(update(jobs).where(and_(mine, jobs.c.id == job_id)).values(
                lease_expires_at_unix_s=now + lease_s, updated_at_unix_s=now)).rowcount == 1
            dropped = and_(mine, jobs.c.id != job_id, jobs.c.updated_at_unix_s < now - lease_s / 2)
            released = {"lease_owner": None, "lease_expires_at_unix_s": None, "updated_at_unix_s": now,
                        "last_error": f"dropped by agent {agent_id[:8]}"}
            conn.execute(update(jobs).where(and_(dropped, jobs.c.attempts >= jobs.c.max_attempts))
                         .values(state="failed", **released))
            conn.execute(update(jobs).where(dropped).values(state="queued", **released))
            return kept

    def forget_agents(self, agent_ids: Sequence[str]) -> int:
        """Delete these registrations (an agent that comes back registers again); returns how many."""
        a = schema.agents
        with self._tx() as conn:
            return conn.execute(delete(a).where(a.c.agent_id.in_(list(agent_ids)))).rowcount

    def registered_agents(self, device_key: str | None = None) -> list[RegisteredAgent]:
        a = schema.agents
        query = select(*(c for c in a.c if c.name != "device_info_json")).order_by(a.c.device_key, a.c.name)
        if device_key is not None:
            query = query.where(a.c.device_key == device_key)
        with self.engine.connect() as conn:
            return [RegisteredAgent(**row) for row in conn.execute(query).mappings()]

    def agent(self, agent_id: str) -> RegisteredAgent | None:
        a = schema.agents
        with self.engine.connect() as conn:
            row = conn.execute(select(*(c for c in a.c if c.name != "device_info_json"))
                               .where(a.c.agent_id == agent_id)).mappings().first()
        return RegisteredAgent(**row) if row is not None else None

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

    def job_states(self, job_keys: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        """{job_key: (state, last error)} of the given jobs that exist."""
        jobs, out = schema.jobs, {}
        with self.engine.connect() as conn:
            for start in range(0, len(job_keys), 500):
                query = (select(jobs.c.job_key, jobs.c.state, jobs.c.last_error)
                         .where(jobs.c.job_key.in_(list(job_keys[start:start + 500]))))
                out.update({key: (state, error) for key, state, error in conn.execute(query)})
        return out

    def records(self, job_keys: Sequence[str]) -> dict[str, MeasurementRecord]:
        """{job_key: record} of the given jobs that have one."""
        m, out = schema.measurements, {}
        with self.engine.connect() as conn:
            for start in range(0, len(job_keys), 500):
                rows = conn.execute(select(m).where(m.c.job_key.in_(list(job_keys[start:start + 500])))).mappings()
                out.update({row["job_key"]: MeasurementRecord.from_row(row) for row in rows})
        return out

    def leased(self) -> list[Job]:
        """Jobs currently leased, with their owners (who is measuring what)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(schema.jobs).where(schema.jobs.c.state == "leased")).mappings()
            return [_job(row) for row in rows]

    def measurements(self, device_key: str | None = None, exclude_warned: bool = False,
                     arch_id: str | None = None) -> Iterator[dict[str, Any]]:
        """Measurement rows joined with their architecture, oldest first; ``exclude_warned`` drops warned ones."""
        m, a = schema.measurements, schema.architectures
        query = (select(m, a.c.space, a.c.arch, a.c.encoding, a.c.macs, a.c.params)
                 .join(a, a.c.arch_id == m.c.arch_id).order_by(m.c.id))
        if device_key is not None:
            query = query.where(m.c.device_key == device_key)
        if arch_id is not None:
            query = query.where(m.c.arch_id == arch_id)
        if exclude_warned:
            query = query.where(~_WARNED)
        with self.engine.connect() as conn:
            yield from (dict(row) for row in conn.execute(query).mappings())

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

    def latency_columns(self) -> tuple[dict[str, tuple], dict[str, tuple[str, int]]]:
        """Every measurement as columns (``device_key``, ``arch_id``, ``protocol``, ``backend``, ``latency_ms``)
        and every architecture's (space, MACs) by id: the narrow read a dashboard plots from. Two plain reads,
        joined by the reader over distinct ids: SQLite takes longer to join 100,000 rows itself."""
        m, a = schema.measurements, schema.architectures
        names = ("device_key", "arch_id", "protocol", "backend", "latency_ms")
        with self.engine.connect() as conn:
            archs = {arch_id: (space, macs) for arch_id, space, macs
                     in conn.execute(select(a.c.arch_id, a.c.space, a.c.macs))}
            rows = conn.execute(select(*(m.c[name] for name in names))).all()
        columns = tuple(zip(*rows, strict=True)) if rows else ((),) * len(names)
        return dict(zip(names, columns, strict=True)), archs

    def architecture(self, arch_id: str) -> ArchRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.architectures)
                               .where(schema.architectures.c.arch_id == arch_id)).mappings().first()
        if row is None:
            raise KeyError(f"architecture {arch_id} is not in the store")
        return ArchRecord(**row)


# The statements of the per-job hot path, built once with bind parameters: SQLAlchemy then reuses their
# compiled form instead of building and cache-keying a new statement for every job (about half of the
# controller's CPU per job in a dispatch profile).
_j = schema.jobs
_LEASE = (update(_j)
          .where(and_(_j.c.id == (select(_j.c.id).where(and_(_j.c.device_key == bindparam("p_key"),
                                                              _j.c.state == "queued"))
                                  .order_by(_j.c.priority.desc(), _j.c.id).limit(1).scalar_subquery()),
                      _j.c.state == "queued"))
          .values(state="leased", lease_owner=bindparam("p_owner"), lease_expires_at_unix_s=bindparam("p_expires"),
                  attempts=_j.c.attempts + 1, updated_at_unix_s=bindparam("p_now"))
          .returning(*_j.c))
_RECORD = insert(schema.measurements)
# A warned record: the agent attached warnings to a measurement it timed. Records it did not time (replayed or
# simulated: count 0; imported: count null) carry a note saying where the value came from, not a warning.
_WARNED = and_(schema.measurements.c.warnings_json != "[]", schema.measurements.c.count > 0)
_DONE = (update(_j).where(_j.c.job_key == bindparam("p_key"))
         .values(state="done", lease_owner=None, lease_expires_at_unix_s=None, last_error=None,
                 updated_at_unix_s=bindparam("p_now")))


def _job(row) -> Job:
    return Job(id=row["id"], job_key=row["job_key"], campaign=row["campaign"], arch_id=row["arch_id"],
               device_key=row["device_key"], backend=row["backend"], protocol=row["protocol"],
               protocol_params=json.loads(row["protocol_params_json"]), batch_size=row["batch_size"],
               attempts=row["attempts"], lease_owner=row["lease_owner"],
               lease_expires_at_unix_s=row["lease_expires_at_unix_s"], state=row["state"],
               model_format=row["model_format"])
