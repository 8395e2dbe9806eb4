"""Measuring a search's candidates on one device key through the fleet's durable job queue.

A search's batch becomes jobs in the store (campaign ``search:<name>``, a high priority so it goes ahead of
a LatBench build sharing the key), agents drain them, and the records come back by job key. A job key
names the measurement (arch, device, backend, protocol, batch), not the campaign, so an architecture
measured before — by this search before it was killed, or by a LatBench build — is never measured again:
re-running a killed search replays its measurements from the store.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from controller.campaign import AgentEndpoint, CampaignPlan, Connect, enqueue_graphs, run_campaign
from controller.client import AgentClient
from controller.graph import ComputationGraph
from controller.store import Store

TERMINAL = ("done", "failed")


@dataclass(frozen=True)
class Outcome:
    """One candidate's measurement: the record's row, or why there is none."""

    record: dict[str, Any] | None
    error: str = ""


def value_of(outcome: Outcome, field: str, column: str) -> tuple[float | None, str]:
    """A measured objective's value from an outcome, or None and why (the job failed, or no such figure)."""
    if outcome.record is None:
        return None, outcome.error
    value = outcome.record.get(field)
    if value is None:
        why = outcome.record.get("power_unavailable_reason") or "not measured"
        return None, f"the device gave no {column} ({why})"
    return float(value), ""


class FleetMeasurer:
    """``measure`` a batch on ``plan.device_keys[0]`` with the given agents (or agents dialling in)."""

    def __init__(self, store: Store, space_name: str, plan: CampaignPlan, endpoints: Sequence[AgentEndpoint],
                 lease_s: float = 120.0, dial_in: bool = False, poll_s: float = 0.2,
                 connect: Connect = AgentClient) -> None:
        if len(plan.device_keys) != 1:
            raise ValueError("a search measures on exactly one device key")
        if not endpoints and not dial_in:
            raise ValueError("no agents to measure on: give --agent KEY=HOST:PORT, --agents FILE or --listen")
        self.store, self.space_name, self.plan = store, space_name, plan
        self.endpoints, self.lease_s, self.dial_in, self.poll_s = list(endpoints), lease_s, dial_in, poll_s
        self.connect = connect

    def measure(self, items: Sequence[tuple[str, str, ComputationGraph]]) -> list[Outcome]:
        """Each (arch, encoding, graph)'s outcome, in order; arch and encoding are the names the store keeps."""
        _, specs = enqueue_graphs(self.store, self.space_name, items, self.plan)
        keys = [s.job_key for s in specs]
        if any(state not in TERMINAL for state, _ in self.store.job_states(keys).values()):
            self._drain(keys)
        records, states = self.store.records(keys), self.store.job_states(keys)
        return [Outcome(records[k]) if k in records else Outcome(None, states.get(k, ("", "not measured"))[1] or
                                                                 "not measured") for k in keys]

    def _drain(self, keys: list[str]) -> None:
        """Run the key's agents until every job of this batch is done or failed (others may share the key)."""
        stop = threading.Event()
        errors: list[BaseException] = []

        def work() -> None:
            try:
                run_campaign(self.store, self.endpoints, self.lease_s, stop=stop, connect=self.connect,
                             device_keys=self.plan.device_keys, dial_in=self.dial_in)
            except Exception as exc:  # surfaced in the search's thread below
                errors.append(exc)

        worker = threading.Thread(target=work, name="search-measure", daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                states = self.store.job_states(keys)
                if all(state in TERMINAL for state, _ in states.values()):
                    break
                worker.join(self.poll_s)
        finally:
            stop.set()
            worker.join()
        if errors:
            raise errors[0]
        unfinished = [k for k, (state, _) in self.store.job_states(keys).items() if state not in TERMINAL]
        if unfinished:
            raise RuntimeError(f"{len(unfinished)} measurement(s) of this batch are unfinished: no agent of "
                               f"{self.plan.device_keys[0]} is left to run them")
