"""The registry of agents that dial in: who registered for which device key, and when each was last heard."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import and_, delete, insert, select, update

from hwnas.controller.store import schema
from hwnas.controller.store.database import Database
from hwnas.controller.store.records import RegisteredAgent


class AgentRegistry(Database):
    """Registrations and heartbeats of dial-out agents."""

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
