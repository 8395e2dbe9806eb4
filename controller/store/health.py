"""Device keys' health: quarantines, where each key's golden-check baseline begins, its last good check,
and the records a drift casts doubt on (the policy is ``hwnas.controller.fleet.health``'s)."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, insert, select, update

from hwnas.controller.store import schema
from hwnas.controller.store.database import Database


@dataclass(frozen=True)
class KeyHealth:
    """One device key's row of ``device_health``."""

    device_key: str
    quarantined: bool
    reason: str
    quarantined_at_unix_s: float | None
    baseline_from_unix_s: float
    last_good_unix_s: float | None
    last_status: str
    last_drift: float | None
    last_check_ms: float | None
    baseline: str
    cleared_by: str
    cleared_at_unix_s: float | None


_h = schema.device_health


class HealthRegistry(Database):
    """Quarantines and golden-check bookkeeping per device key; every change is one transaction."""

    def _upsert(self, conn, device_key: str, values: Mapping[str, Any]) -> None:
        if conn.execute(select(_h.c.device_key).where(_h.c.device_key == device_key)).first() is None:
            row = {"device_key": device_key, "quarantined": False, "reason": "", "baseline_from_unix_s": 0.0,
                   "last_status": "", "baseline": "", "cleared_by": "", **values}
            conn.execute(insert(_h).values(**row))
        else:
            conn.execute(update(_h).where(_h.c.device_key == device_key).values(**values))

    def quarantine(self, device_key: str, reason: str, now: float | None = None) -> None:
        """No leases for ``device_key`` until ``clear_quarantine``."""
        now = time.time() if now is None else now
        with self._tx() as conn:
            self._upsert(conn, device_key, {"quarantined": True, "reason": reason, "quarantined_at_unix_s": now})

    def clear_quarantine(self, device_key: str, by: str, rebaseline: bool = False, now: float | None = None) -> bool:
        """Lift the key's quarantine (``by``: who, for the audit); ``rebaseline``: its next checks form a new
        baseline (the change was meant). Returns whether the key was quarantined."""
        now = time.time() if now is None else now
        with self._tx() as conn:
            was = conn.execute(select(_h.c.quarantined).where(_h.c.device_key == device_key)).scalar()
            values: dict[str, Any] = {"quarantined": False, "cleared_by": by[:400], "cleared_at_unix_s": now}
            if rebaseline:
                values["baseline_from_unix_s"] = now
            if was or rebaseline:
                self._upsert(conn, device_key, values)
        return bool(was)

    def note_check(self, device_key: str, status: str, latency_ms: float, drift: float | None, baseline: str,
                   good_at_unix_s: float | None) -> None:
        """Keep the verdict on the key's latest check; ``good_at_unix_s``: it was good, recorded then."""
        values: dict[str, Any] = {"last_status": status, "last_check_ms": latency_ms, "last_drift": drift,
                                  "baseline": baseline}
        if good_at_unix_s is not None:
            values["last_good_unix_s"] = good_at_unix_s
        with self._tx() as conn:
            self._upsert(conn, device_key, values)

    def key_health(self) -> dict[str, KeyHealth]:
        """Every key that was checked, quarantined or cleared."""
        with self.engine.connect() as conn:
            return {row["device_key"]: KeyHealth(**row) for row in conn.execute(select(_h)).mappings()}

    def quarantined_keys(self) -> dict[str, str]:
        """{device key: why} of the quarantined keys."""
        with self.engine.connect() as conn:
            return dict(conn.execute(select(_h.c.device_key, _h.c.reason).where(_h.c.quarantined)).all())

    def checks(self, device_key: str, arch_id: str, since_unix_s: float = 0.0) -> list[dict[str, Any]]:
        """The records of ``arch_id`` (the reference network) on the key recorded since ``since_unix_s``,
        oldest first: latency, when recorded, by which agent, backend and format."""
        m = schema.measurements
        query = (select(m.c.latency_ms, m.c.recorded_at_unix_s, m.c.agent_name, m.c.backend, m.c.model_format)
                 .where(and_(m.c.device_key == device_key, m.c.arch_id == arch_id,
                             m.c.recorded_at_unix_s >= since_unix_s))
                 .order_by(m.c.recorded_at_unix_s, m.c.id))
        with self.engine.connect() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def warn_records(self, device_key: str, since_unix_s: float, warning: str, except_arch_id: str) -> int:
        """Add ``warning`` to the key's records recorded after ``since_unix_s`` (but ``except_arch_id``'s, the
        checks themselves); returns how many. A record already carrying it is left as it is."""
        m = schema.measurements
        with self._tx() as conn:
            rows = conn.execute(select(m.c.id, m.c.warnings_json).where(and_(
                m.c.device_key == device_key, m.c.recorded_at_unix_s > since_unix_s,
                m.c.arch_id != except_arch_id))).all()
            changed = [(row_id, json.loads(text)) for row_id, text in rows]
            changed = [(row_id, [*warnings, warning]) for row_id, warnings in changed if warning not in warnings]
            for row_id, warnings in changed:
                conn.execute(update(m).where(m.c.id == row_id).values(warnings_json=json.dumps(warnings)))
        return len(changed)
