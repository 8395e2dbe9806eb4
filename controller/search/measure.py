"""Measuring a search's candidates on one device key through the long-lived fleet.

A search's batch becomes jobs in the store (campaign ``search:<name>``, a high priority so it goes ahead of
a LatBench build sharing the key); the fleet's workers, started once for the whole search, measure them and
the records come back by job key as they settle. A job key names the measurement (arch, device, backend,
protocol, batch), not the campaign, so an architecture measured before — by this search before it was
killed, or by a LatBench build — is never measured again: re-running a killed search replays its
measurements from the store.
"""

from __future__ import annotations

from collections.abc import Sequence

from controller.fleet import Fleet, Outcome
from controller.fleet.campaign import CampaignPlan
from controller.spaces import Candidate


def value_of(outcome: Outcome, field: str, column: str) -> tuple[float | None, str]:
    """A measured objective's value from an outcome, or None and why (the job failed, or no such figure)."""
    if outcome.record is None:
        return None, outcome.error
    if outcome.record.output_check_status == "wrong_answer":
        return None, (f"the device gave a wrong answer (max abs error {outcome.record.output_max_abs_error}) "
                      "against the fp32 reference")
    value = outcome.record.value(field)
    if value is None:
        why = outcome.record.power.get("unavailable_reason") or "not measured"
        return None, f"the device gave no {column} ({why})"
    return float(value), ""


class FleetMeasurer:
    """The evaluator's ``Measurer`` on ``plan.device_keys[0]`` through an open fleet: ``send`` queues the jobs
    (the fleet's workers start on them at once), ``fetch_all`` waits for them to settle."""

    def __init__(self, fleet: Fleet, plan: CampaignPlan) -> None:
        if len(plan.device_keys) != 1:
            raise ValueError("a search measures on exactly one device key")
        self.fleet, self.plan = fleet, plan
        self._keys: list[str] = []

    def send(self, candidates: Sequence[Candidate]) -> None:
        self._keys += self.fleet.submit(candidates, self.plan)

    def fetch_all(self) -> list[Outcome]:
        keys, self._keys = self._keys, []
        return self.fleet.results(keys) if keys else []
