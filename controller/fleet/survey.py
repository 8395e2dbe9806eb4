"""What the fleet looks like right now: health, identity, current job and queue depth of every agent.

Two kinds of agent: configured ones the controller dials (asked over gRPC health and GetDeviceInfo now),
and registered ones that dialled in (read from the store: healthy while their heartbeats keep coming).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from hwnas.controller.fleet.agents import AgentEndpoint, Connect
from hwnas.controller.fleet.client import AgentCallError
from hwnas.controller.store import Store


@dataclass(frozen=True)
class AgentStatus:
    device_key: str
    address: str  # HOST:PORT of a dialled agent; "dial-in <peer>" of a registered one
    health: str  # SERVING / NOT_SERVING / why it could not be asked; registered: healthy / unhealthy (...)
    name: str = ""
    version: str = ""
    backends: str = ""
    current_job: str = ""
    queued_for_key: int = 0


def survey(endpoints: Sequence[AgentEndpoint], connect: Connect, store: Store | None = None,
           timeout_s: float = 3.0) -> list[AgentStatus]:
    counts = store.counts() if store is not None else {}
    leased = store.leased() if store is not None else []
    rows = []
    for ep in endpoints:
        with connect(ep.address) as client:
            health = client.health(timeout_s)
            info = None
            if health == "SERVING":
                try:
                    info = client.device_info()
                except AgentCallError as exc:
                    health = f"SERVING, but {exc.code.name}"
        job = next((j for j in leased if j.lease_owner.endswith(ep.address)), None)
        rows.append(AgentStatus(
            device_key=ep.device_key, address=ep.address, health=health,
            name=info.agent_name if info else "", version=info.agent_version if info else "",
            backends=",".join(info.backends) if info else "",
            current_job=f"{job.arch_id[:12]} ({job.protocol})" if job else "",
            queued_for_key=counts.get(ep.device_key, {}).get("queued", 0),
        ))
    return rows


def registered(store: Store, now: float | None = None) -> list[AgentStatus]:
    """Agents that dialled in, from their registrations and heartbeats in the store."""
    now = time.time() if now is None else now
    counts = store.counts()
    leased = store.leased()
    rows = []
    for agent in store.registered_agents():
        silent_s = now - agent.last_seen_at_unix_s
        health = "healthy" if agent.healthy(now) else f"stale (silent {silent_s:.0f} s; hwnas fleet forget)"
        job = next((j for j in leased if j.lease_owner == agent.agent_id), None)
        rows.append(AgentStatus(
            device_key=agent.device_key, address=f"dial-in {agent.peer}", health=health, name=agent.name,
            version=agent.version, backends=agent.backends,
            current_job=f"{job.arch_id[:12]} ({job.protocol})" if job else "",
            queued_for_key=counts.get(agent.device_key, {}).get("queued", 0),
        ))
    return rows
