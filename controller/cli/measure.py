"""Measuring on one device key from a search command: the flags, the agents, and dial-in serving.

``hwnas search``, ``hwnas autogo run`` and ``hwnas predictor layers`` measure candidates through the fleet;
this is the part they share: how jobs are shaped (backend, format, protocol, batch, priority), the fleet flags
of ``cli.fleet_flags`` (the same as ``latbench build``'s), and the fleet open while they measure.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from hwnas.controller.cli import common
from hwnas.controller.cli.fleet_flags import add_fleet_options, check_agents, fleet_config
from hwnas.controller.graph.backend_formats import backend_names
from hwnas.protos import names


def add_detail_options(group) -> None:
    """What a job measures besides latency (#37), for every command that queues jobs."""
    group.add_argument("--op-profile", action="store_true",
                       help="also keep the runtime's own per-op profile (onnxruntime, openvino, tool backends; "
                            "exported as op_profile_json)")
    group.add_argument("--check-output", action="store_true",
                       help="also check the device's outputs against onnxruntime at fp32 (ok, wrong_answer or "
                            "skipped; wrong answers are left out of predictors and fail a search's evaluation)")
    group.add_argument("--memory", action="store_true",
                       help="also measure the model's own memory footprint where the runtime reports none (a fresh "
                            "process on the agent, seconds per model)")


def plan_details(args: argparse.Namespace) -> dict[str, Any]:
    """The ``CampaignPlan`` fields ``add_detail_options`` set, with who submits the jobs (the audit)."""
    return {"op_profile": args.op_profile, "memory": args.memory, "output_check": args.check_output,
            "submitted_by": common.submitter(args)}


def add_measurement_options(parser: argparse.ArgumentParser) -> None:
    m = parser.add_argument_group("measurement")
    m.add_argument("--backend", default="onnxruntime",
                   help=f"agent backend, one of {backend_names()} (default %(default)s)")
    m.add_argument("--model-format", default=None,
                   help="model sent to the agent: onnx, tflite, tflite-int8, tflite-int8-full, edgetpu (default: what "
                        "the backend runs first)")
    m.add_argument("--protocol", default="latbench", choices=["latbench", "adaptive", "fixed"])
    m.add_argument("--param", type=common.param, action="append", metavar="KEY=VALUE", help="protocol parameter")
    m.add_argument("--batch-size", type=common.whole(1), default=1)
    add_detail_options(m)
    m.add_argument("--priority", type=int, default=100, help="queue priority of the search's jobs (default "
                                                             "%(default)s: ahead of LatBench builds)")
    add_fleet_options(parser)


@dataclass
class Measurement:
    """What the flags say about measuring on ``device``, checked before anything starts."""

    plan: Any  # campaign.CampaignPlan
    fleet: Any  # fleet.FleetConfig
    connect_timeout_s: float

    @classmethod
    def from_args(cls, args: argparse.Namespace, device: str, campaign_name: str,
                  on_done: Callable[[str, str], None] = lambda key, arch_id: None) -> Measurement:
        """Raises ValueError naming the flag when the agents or the job shape cannot work."""
        from hwnas.controller.fleet import campaign
        from hwnas.controller.graph.model_formats import check_exportable

        plan = campaign.CampaignPlan(campaign=names.label_from(campaign_name), device_keys=[device],
                                     backend=args.backend,
                                     model_format=args.model_format or "", protocol=args.protocol,
                                     protocol_params=dict(args.param or []), batch_size=args.batch_size,
                                     priority=args.priority, **plan_details(args))
        check_exportable(plan.model_format)
        return cls(plan, fleet_config(args, [device], note=print, on_done=on_done), args.connect_timeout)

    @contextlib.contextmanager
    def measurer(self, store, note: Callable[[str], None]) -> Iterator[Any]:
        """A FleetMeasurer on the device's agents (and agents dialling in), the fleet open while it is."""
        from hwnas.controller.fleet import Fleet
        from hwnas.controller.search.measure import FleetMeasurer

        check_agents(self.fleet, self.connect_timeout_s)
        with Fleet(store, replace(self.fleet, note=note)) as fleet:
            yield FleetMeasurer(fleet, self.plan)
