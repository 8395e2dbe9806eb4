"""What the fleet looks like right now: each configured agent's health, identity, current job, queue depth."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from controller.campaign import AgentEndpoint, Connect
from controller.client import AgentCallError
from controller.store import Store


@dataclass(frozen=True)
class AgentStatus:
    device_key: str
    address: str
    health: str  # SERVING, NOT_SERVING, or why it could not be asked
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
