"""Opening the durable store: SQLite (WAL) by default, any SQLAlchemy URL (PostgreSQL) for shared labs.

``Database`` opens, migrates and checks the schema, and runs every change as one write transaction; the
queue (``store.queue``), the agent registry (``store.agents``) and the dataset (``store.dataset``) are its
rooms, and ``Store`` is all three on one database.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, func, insert, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError

from hwnas.controller.errors import HwnasError
from hwnas.controller.store import schema


class SchemaError(HwnasError, RuntimeError):
    """The database was written by a newer hwnas, or is not an hwnas store."""


DIALECTS = ("sqlite", "postgresql")  # the servers the store is tested on (CI starts a PostgreSQL)


class StoreOpenError(HwnasError, RuntimeError):
    """The database cannot be opened: an unwritable path, a server that does not answer, bad credentials."""


class StoreUnavailable(HwnasError, RuntimeError):
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


D = TypeVar("D", bound="Database")


class Database:
    """One open database at the current schema; the rooms of the store are its subclasses."""

    def __init__(self, target: str | Path, read_only: bool = False) -> None:
        self.url = database_url(target)
        self.read_only = read_only
        try:
            url = make_url(self.url)
        except ArgumentError:
            raise StoreOpenError(f"{target!r} is neither a dataset file nor a database URL "
                                 "(e.g. postgresql://user@host/hwnas)") from None
        self.where = url.render_as_string(hide_password=True)
        if url.get_backend_name() not in DIALECTS:
            raise StoreOpenError(f"hwnas keeps datasets in SQLite (a file path) or PostgreSQL (postgresql://...), "
                                 f"not {url.get_backend_name()} ({self.where})")
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
        except DatabaseError as exc:  # e.g. a file that is not SQLite at all
            self.engine.dispose()
            raise StoreOpenError(f"cannot open the dataset at {self.where}: {str(exc.orig).splitlines()[0]} "
                                 "(is it an hwnas dataset?)") from None
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

    def __enter__(self: D) -> D:
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
