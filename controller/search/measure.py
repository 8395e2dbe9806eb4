"""The evaluator's measurers: a search's candidates on one device key through the long-lived fleet's queue
(``FleetMeasurer``), or models on one agent outside the queue and the dataset (``ProfileMeasurer``).

A search's batch becomes jobs in the store (campaign ``search:<name>``, a high priority so it goes ahead of
a LatBench build sharing the key); the fleet's workers, started once for the whole search, measure them and
the records come back by job key as they settle. A job key names the measurement (arch, device, backend,
protocol, batch), not the campaign, so an architecture measured before — by this search before it was
killed, or by a LatBench build — is never measured again: re-running a killed search replays its
measurements from the store.
"""

from __future__ import annotations

from collections.abc import Sequence

from hwnas.controller.fleet import AgentEndpoint, Fleet, Outcome
from hwnas.controller.fleet.campaign import CampaignPlan, to_record
from hwnas.controller.fleet.client import AgentCallError, ProfileSpec
from hwnas.controller.fleet.profile import Profiled
from hwnas.controller.spaces import Measurable, ModelFile
from hwnas.controller.store import JobSpec
from hwnas.controller.store.records import InvalidRecord


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

    def send(self, candidates: Sequence[Measurable]) -> None:
        files = [c.arch for c in candidates if isinstance(c, ModelFile)]
        if files:
            raise TypeError(f"model files ({', '.join(files)}) have no graph to queue: profile them on an agent")
        self._keys += self.fleet.submit(candidates, self.plan)  # type: ignore[arg-type]

    def fetch_all(self) -> list[Outcome]:
        keys, self._keys = self._keys, []
        return self.fleet.results(keys) if keys else []


class ProfileMeasurer:
    """The evaluator's ``Measurer`` for ``hwnas profile`` and the demo: each model on one agent, in the order
    sent, outside the queue and the dataset (``Fleet.profile``: the fleet's TLS and token, conversion on the
    controller, the host's measuring turn). A model file goes as its bytes, a network as its ONNX.

    Each outcome's record is the measurement record a campaign would have stored (device key: the endpoint's),
    and ``Outcome.profiled`` the agent's whole answer (samples, outputs, whether the model was uploaded). An
    agent that refuses or fails a model fails that evaluation; a setting that cannot work (a format no backend
    runs, an unreadable model) raises.
    """

    def __init__(self, fleet: Fleet, endpoint: AgentEndpoint, spec: ProfileSpec, backend: str | None = None,
                 send_format: str | None = None, ready_timeout_s: float = 10.0) -> None:
        self.fleet, self.endpoint, self.spec = fleet, endpoint, spec
        self.backend, self.send_format, self.ready_timeout_s = backend, send_format, ready_timeout_s
        self._sent: list[Measurable] = []

    def send(self, candidates: Sequence[Measurable]) -> None:
        self._sent += candidates

    def fetch_all(self) -> list[Outcome]:
        sent, self._sent = self._sent, []
        return [self._profile(candidate) for candidate in sent]

    def _profile(self, candidate: Measurable) -> Outcome:
        if isinstance(candidate, ModelFile):
            data, own_format = candidate.data, candidate.own_format
        else:
            from hwnas.controller.graph.onnx_export import to_onnx_bytes

            data, own_format = to_onnx_bytes(candidate.graph), "onnx"
        try:
            done = self.fleet.profile(self.endpoint, data, own_format, self.spec, self.backend, self.send_format,
                                      ready_timeout_s=self.ready_timeout_s)
        except AgentCallError as exc:
            return Outcome(candidate.arch_id, None, str(exc))
        try:
            record = to_record(self._job(candidate, done), done.record.result, done.check)
        except InvalidRecord as exc:
            return Outcome(candidate.arch_id, None, f"the agent's answer is not a measurement: {exc}", done)
        return Outcome(record.job_key, record, "", done)

    def _job(self, candidate: Measurable, done: Profiled) -> JobSpec:
        """The job this measurement would have been in a campaign (its record's key)."""
        r = done.record.result
        return JobSpec(campaign="profile", arch_id=candidate.arch_id, device_key=self.endpoint.device_key,
                       backend=r["backend"], protocol=r["protocol"], protocol_params=r["protocol_params"],
                       batch_size=r["batch_size"], model_format=done.model_format)
