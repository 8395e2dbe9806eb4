"""Measuring on one device key from a search command: the flags, the agents, and dial-in serving.

``hwnas search`` and ``hwnas autogo run`` both measure candidates through the fleet; this is the part they
share: which agents (``--agent``, ``--agents``, ``--listen``), how jobs are shaped (backend, format,
protocol, batch, priority) and the lifetime of the gateway that serves agents dialling in.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller import cli_common as common


def add_measurement_options(parser: argparse.ArgumentParser) -> None:
    m = parser.add_argument_group("measurement")
    m.add_argument("--agent", action="append", metavar="[KEY=]HOST:PORT", help="an agent of --device; repeatable")
    m.add_argument("--agents", type=Path, metavar="FILE", help="TOML file of [[agents]] key/address tables")
    m.add_argument("--listen", metavar="HOST:PORT", help="serve agents that dial in (hwnas-agent --controller)")
    m.add_argument("--require-client-cert", action="store_true", help="with --listen: mutual TLS")
    m.add_argument("--backend", default="onnxruntime",
                   help="agent backend: onnxruntime, litert, torch, simulator, replay (a recorded table), ...")
    m.add_argument("--model-format", default=None,
                   help="model sent to the agent: onnx, tflite, tflite-int8, tflite-int8-full, edgetpu (default: what "
                        "the backend runs first)")
    m.add_argument("--protocol", default="latbench", choices=["latbench", "adaptive", "fixed"])
    m.add_argument("--param", type=common.param, action="append", metavar="KEY=VALUE", help="protocol parameter")
    m.add_argument("--batch-size", type=int, default=1)
    m.add_argument("--priority", type=int, default=100, help="queue priority of the search's jobs (default "
                                                             "%(default)s: ahead of LatBench builds)")
    m.add_argument("--lease-seconds", type=float, default=120.0)
    m.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS")
    common.add_client_security(parser)


@dataclass
class Measurement:
    """What the flags say about measuring on ``device``, checked before anything starts."""

    args: argparse.Namespace
    device: str
    plan: Any  # campaign.CampaignPlan
    endpoints: list
    connect: Callable | None
    listen_tls: Any
    token: str | None

    @classmethod
    def from_args(cls, args: argparse.Namespace, device: str, campaign_name: str) -> Measurement:
        """Raises ValueError naming the flag when the agents or the job shape cannot work."""
        from controller import campaign
        from controller.model_formats import check_exportable
        from protos.auth import read_token

        endpoints = [campaign.parse_agent(a) if "=" in a else campaign.AgentEndpoint(device, a)
                     for a in args.agent or []]
        if args.agents:
            endpoints += campaign.load_agents(args.agents)
        endpoints = [ep for ep in endpoints if ep.device_key == device]
        if not endpoints and not args.listen:
            raise ValueError(f"no agent for device key {device!r}: use --agent HOST:PORT, --agents FILE, or "
                             "--listen HOST:PORT for agents that dial in")
        plan = campaign.CampaignPlan(campaign=campaign_name, device_keys=[device], backend=args.backend,
                                     model_format=args.model_format or "", protocol=args.protocol,
                                     protocol_params=dict(args.param or []), batch_size=args.batch_size,
                                     priority=args.priority)
        check_exportable(plan.model_format)
        return cls(args, device, plan, endpoints, common.connector(args) if endpoints else None,
                   common.server_tls(args) if args.listen else None, read_token(args.token_file))

    @contextlib.contextmanager
    def measurer(self, store, space_name: str, note: Callable[[str], None]) -> Iterator[Any]:
        """A FleetMeasurer on the device's agents (and agents dialling in), the fleet open while it is."""
        from controller import campaign
        from controller.fleet import Fleet, FleetConfig
        from controller.search.measure import FleetMeasurer

        if self.endpoints:
            campaign.wait_for_agents(self.endpoints, self.args.connect_timeout, self.connect)
        config = FleetConfig(endpoints=self.endpoints, connect=self.connect or campaign.AgentClient,
                             lease_s=self.args.lease_seconds, listen=self.args.listen, listen_tls=self.listen_tls,
                             token=self.token, note=note)
        with Fleet(store, config) as fleet:
            yield FleetMeasurer(fleet, space_name, self.plan)
