"""LatBench-style campaigns: measure many architectures on several device keys, durably.

The plan (architectures x device keys) becomes jobs in the store; the fleet's workers (``fleet.worker``)
lease jobs of their device key through the key's scheduler, build the model from the stored CG
(``fleet.models``), profile it and record the result (``to_record``). Everything is re-doable: a lease that
is not renewed expires and the job returns to the queue; a record is keyed by the job, so a job measured
twice still has one row. Re-running the same command resumes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hwnas.controller.errors import SettingError
from hwnas.controller.fleet.client import ProfileSpec
from hwnas.controller.fleet.health import GOLDEN_CAMPAIGN
from hwnas.controller.fleet.output_check import OutputCheck, verdict
from hwnas.controller.graph.model_formats import format_for
from hwnas.controller.graph.onnx_export import node_of_name
from hwnas.controller.spaces import Candidate, SearchSpace
from hwnas.controller.store import ArchRecord, Job, JobSpec, MeasurementRecord, Store
from hwnas.protos import names

TOOL_MEAN = "/tool-mean"  # the protocol suffix of a vendor tool's record that carries the tool's own statistics


@dataclass(frozen=True)
class CampaignPlan:
    campaign: str
    device_keys: Sequence[str]
    backend: str = "onnxruntime"
    model_format: str = ""  # empty: what the backend runs first (controller.graph.model_formats.format_for)
    protocol: str = "latbench"
    protocol_params: Mapping[str, float] = field(default_factory=dict)
    batch_size: int = 1
    max_attempts: int = 3
    priority: int = 0  # higher first, within each device key's queue
    op_profile: bool = False  # new jobs ask the runtime for its per-op profile too (stored in op_profile_json)
    memory: bool = False  # ... and for the model's own memory footprint (peak_memory_bytes, memory_source)
    submitted_by: str = ""  # who queues the jobs (``cli.common.submitter``): kept with each job for the audit
    output_check: bool = False  # ... and check each device's outputs against the fp32 reference

    def __post_init__(self) -> None:
        """Names are checked (``hwnas.protos.names``) and counts bounded before any job exists."""
        for setting, check, values in (("campaign", names.campaign_name, [self.campaign]),
                                       ("device_keys", names.device_key, self.device_keys)):
            try:
                for value in values:
                    check(value)
            except names.InvalidName as exc:
                raise SettingError(setting, f": {exc}") from None
        if self.campaign == GOLDEN_CAMPAIGN:
            raise SettingError("campaign", f"{GOLDEN_CAMPAIGN!r} is reserved for the golden-model checks; choose "
                                           "another name")
        if not self.device_keys:
            raise SettingError("device_keys", "must name at least one device key")
        for name in ("batch_size", "max_attempts"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise SettingError(name, f"must be a whole number >= 1, got {value!r}")
        object.__setattr__(self, "model_format", format_for(self.backend, self.model_format or None))


def per_key(devices: Sequence[str], values: Sequence[str], default: str | None, what: str) -> dict[str, str | None]:
    """``[KEY=]NAME`` flags -> {device key: NAME}: a bare NAME sets every key, ``KEY=NAME`` one key."""
    chosen: dict[str, str | None] = dict.fromkeys(devices, default)
    for value in values:
        key, sep, name = value.rpartition("=")
        if not name:
            raise SettingError(what, f"must look like NAME or KEY=NAME, got {value!r}")
        if sep and key not in chosen:
            raise SettingError(what, f"{value!r} names device key {key!r}, which is not one of the campaign's "
                                     f"device keys {list(devices)}")
        for k in ([key] if sep else devices):
            chosen[k] = name
    return chosen


def plans_by_runtime(base: CampaignPlan, backends: Sequence[str] = (), formats: Sequence[str] = ()
                     ) -> list[CampaignPlan]:
    """One plan per (backend, model format) among ``base``'s device keys, from ``[KEY=]NAME`` flags.

    A device key is served by agents of one runtime, so a campaign over an ORT agent, a LiteRT agent and a
    PyTorch agent is one plan per runtime, each sending the model format its backend runs.
    """
    backend_of = per_key(base.device_keys, backends, base.backend, "backend")
    format_of = per_key(base.device_keys, formats, None, "model_format")
    groups: dict[tuple[str, str], list[str]] = {}
    for key in base.device_keys:
        backend = backend_of[key] or base.backend
        groups.setdefault((backend, format_for(backend, format_of[key])), []).append(key)
    return [replace(base, device_keys=keys, backend=backend, model_format=fmt)
            for (backend, fmt), keys in groups.items()]


ENQUEUE_CHUNK = 500  # architectures per transaction: bounded memory for whole-space campaigns


@dataclass(frozen=True)
class Enqueued:
    """What ``enqueue`` did: how many jobs were new, and the key of every job the plan holds (new or not)."""

    added: int
    job_keys: list[str]


def enqueue(store: Store, space: SearchSpace, archs: Sequence[Sequence[int]], plan: CampaignPlan,
            progress: Callable[[int], None] = lambda n: None) -> Enqueued:
    """Add the architectures and one job per (arch, device key).

    Works in chunks, so a 15,625-architecture plan never holds all the CGs (~40 kB each) at once.
    """
    added, keys = 0, []
    for start in range(0, len(archs), ENQUEUE_CHUNK):
        chunk = archs[start:start + ENQUEUE_CHUNK]
        new, specs = enqueue_candidates(store, [space.candidate(x) for x in chunk], plan)
        added += new
        keys += [spec.job_key for spec in specs]
        progress(len(chunk))
    store.set_priority(plan.campaign, plan.priority)  # a re-run with another --priority re-orders what is left
    return Enqueued(added, keys)


def enqueue_candidates(store: Store, candidates: Sequence[Candidate], plan: CampaignPlan
                       ) -> tuple[int, list[JobSpec]]:
    """``enqueue`` for candidates the caller already built; returns (new jobs, every spec, in order)."""
    records = [ArchRecord(arch_id=c.arch_id, space=c.space, arch=c.arch, encoding=c.encoding_text,
                          macs=c.graph.macs(), params=c.graph.params(), cg_json=c.graph.to_json())
               for c in candidates]
    specs = [JobSpec(campaign=plan.campaign, arch_id=c.arch_id, device_key=key, backend=plan.backend,
                     protocol=plan.protocol, protocol_params=plan.protocol_params, batch_size=plan.batch_size,
                     max_attempts=plan.max_attempts, priority=plan.priority, model_format=plan.model_format,
                     op_profile=plan.op_profile, memory=plan.memory, submitted_by=plan.submitted_by,
                     output_check=plan.output_check)
             for c in candidates for key in plan.device_keys]
    store.add_architectures(records)
    return store.enqueue(specs), specs


def job_profile(job: Job) -> ProfileSpec:
    """How a job's model is profiled, by a worker or by an agent that dials in."""
    return ProfileSpec(backend=job.backend, protocol=job.protocol, protocol_params=job.protocol_params,
                       batch_size=job.batch_size, op_profile=job.op_profile, memory=job.memory,
                       output_check=job.output_check)


def to_record(job: Job | JobSpec, r: Mapping[str, Any], check: OutputCheck | None = None) -> MeasurementRecord:
    """A job's measurement record from the agent's ProfileResult (as ``client.message_dict`` gives it), with
    the verdict of its output check where the job asked for one (a ``JobSpec`` for a measurement made outside
    the queue, such as ``hwnas profile``'s)."""
    shape = r["input_shapes"][0]["dims"] if r["input_shapes"] else []
    stats = r["stats"]
    if r["protocol"].endswith(TOOL_MEAN):  # a vendor tool printed only some statistics: the rest are unknown, not 0
        stats = {k: v for k, v in stats.items() if v or k == "count"}
    return MeasurementRecord(
        job_key=job.job_key, arch_id=job.arch_id, device_key=job.device_key, backend=r["backend"],
        protocol=r["protocol"], protocol_params=r["protocol_params"], batch_size=r["batch_size"],
        input_shape=list(shape), latency_ms=r["latency_ms"], stats=stats, agent_name=r["agent_name"],
        agent_version=r["agent_version"], started_unix_ns=r["started_unix_ns"], finished_unix_ns=r["finished_unix_ns"],
        queue_wait_ms=r["queue_wait_ms"], protocol_details=r["protocol_details"], power=r["power"],
        environment=r["environment"], replayed=r["backend"] == "replay", model_format=job.model_format,
        warnings=tuple(r.get("warnings", ())), load_ms=r.get("load_ms") or None,
        first_inference_ms=r.get("first_inference_ms") or None,
        peak_memory_bytes=int(r["peak_memory_bytes"]) if r.get("peak_memory_bytes") else None,
        memory_source=r.get("memory_source") or None, op_profile=tuple(map(with_cg_node, r.get("op_profile", ()))),
        model_bytes=int(r["model_bytes"]) if r.get("model_bytes") else None,
        output_check_status=check.status if check else None,
        output_max_abs_error=check.max_abs_error if check else None,
    )


def with_cg_node(op: Mapping[str, Any]) -> dict[str, Any]:
    """A per-op entry with ``cg_node``: the index of the CG node its name comes from, or None (a runtime's
    own node, such as a layout reorder, or a graph output: the record's graph is not at hand here)."""
    return {**op, "cg_node": node_of_name(str(op.get("name", "")))}


def check_outputs(job: Job, r: Mapping[str, Any], models) -> OutputCheck | None:
    """The output check of a job that asked for one: the agent's outputs against onnxruntime at fp32 on the
    ONNX of the job's network (``models``: the fleet's ``ModelSource``)."""
    if not job.output_check:
        return None
    from hwnas.controller.fleet.models import ModelKey

    onnx = models.model(ModelKey(job.arch_id, "onnx", job.batch_size))
    shapes = [shape["dims"] for shape in r["input_shapes"]]
    return verdict(r.get("outputs", []), onnx, shapes, job.model_format)


def summary_line(counts: Mapping[str, Mapping[str, int]]) -> str:
    return "; ".join(f"{key}: " + ", ".join(f"{n} {state}" for state, n in states.items() if n)
                     for key, states in sorted(counts.items()))
