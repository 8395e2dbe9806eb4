"""The dataset's reads and writes: architectures, measurement records (a job's, or imported ones), and the
joined rows that exports, predictors and the dashboard read."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import and_, func, insert, select

from hwnas.controller.store import schema
from hwnas.controller.store.database import Database
from hwnas.controller.store.records import ArchRecord, MeasurementRecord

# A warned record: the agent attached warnings to a measurement it timed. Records it did not time (replayed or
# simulated: count 0; imported: count null) carry a note saying where the value came from, not a warning.
_WARNED = and_(schema.measurements.c.warnings_json != "[]", schema.measurements.c.count > 0)


class Dataset(Database):
    """Architectures and measurements."""

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

    def records(self, job_keys: Sequence[str]) -> dict[str, MeasurementRecord]:
        """{job_key: record} of the given jobs that have one."""
        m, out = schema.measurements, {}
        with self.engine.connect() as conn:
            for start in range(0, len(job_keys), 500):
                rows = conn.execute(select(m).where(m.c.job_key.in_(list(job_keys[start:start + 500])))).mappings()
                out.update({row["job_key"]: MeasurementRecord.from_row(row) for row in rows})
        return out

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

    def warned_count(self, device_key: str | None = None) -> int:
        """How many records carry warnings (what ``exclude_warned`` leaves out)."""
        m = schema.measurements
        query = select(func.count()).select_from(m).where(_WARNED)
        if device_key is not None:
            query = query.where(m.c.device_key == device_key)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

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
