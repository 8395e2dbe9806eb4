"""The fleet flags every measuring command shares (latbench build, search, autogo run, predictor layers).

One set of flags, one syntax: ``--agent [KEY=]HOST:PORT`` (a bare address serves the command's only device
key), ``--agents FILE``, ``--listen HOST:PORT`` for agents that dial in, ``--isolated``, the lease and the
TLS/token flags. ``fleet_config`` turns them into the typed ``FleetConfig`` a ``Fleet`` opens from; nothing
past this module sees the argparse namespace.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from hwnas.controller.cli import common
from hwnas.controller.fleet.health import GoldenPolicy
from hwnas.protos.listen import address_arg


def add_fleet_options(parser: argparse.ArgumentParser) -> None:
    f = parser.add_argument_group("fleet", "the agents that measure, and how to reach them")
    f.add_argument("--agent", action="append", metavar="[KEY=]HOST:PORT",
                   help="an agent serving device key KEY (a bare HOST:PORT serves the only device key); repeatable")
    f.add_argument("--agents", type=Path, metavar="FILE", help="TOML file of [[agents]] key/address tables")
    f.add_argument("--listen", metavar="HOST:PORT", type=address_arg,
                   help="also serve agents that dial in (hwnas-agent serve --controller HOST:PORT --device-key KEY)")
    f.add_argument("--require-client-cert", action="store_true",
                   help="with --listen: agents must present a certificate signed by --tls-ca (mutual TLS)")
    f.add_argument("--isolated", action="append", metavar="KEY[,KEY...]", type=common.DEVICE_KEYS,
                   help="device keys whose agents do not disturb others on their host (e.g. each on its own GPU); "
                        "by default agents on one host measure one at a time")
    f.add_argument("--lease-seconds", type=float, default=120.0,
                   help="a job whose agent stops answering (or heartbeating) for this long goes back to the "
                        "queue (default %(default)s)")
    f.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="how long configured agents have to answer at start (default %(default)s)")
    g = parser.add_argument_group("golden-model checks", "each device key measures a fixed reference network at "
                                  "start and every N jobs or M minutes; a drift quarantines the key until "
                                  "`hwnas fleet clear KEY` (docs/protocol.md)")
    defaults = GoldenPolicy()
    g.add_argument("--golden-every", type=int, default=defaults.every_jobs, metavar="JOBS",
                   help="a check after this many jobs of a key (default %(default)s)")
    g.add_argument("--golden-minutes", type=float, default=defaults.every_s / 60, metavar="MINUTES",
                   help="... or this long after the last check (default %(default)s)")
    g.add_argument("--golden-threshold", type=float, default=defaults.threshold, metavar="FRACTION",
                   help="a check this far (relative) outside the baseline's 95%% confidence interval is a suspect; "
                        "two in a row quarantine the key (default %(default)s)")
    g.add_argument("--no-golden", action="store_true", help="run no golden checks (nothing is quarantined)")
    common.add_client_security(parser)


def endpoints_from_args(args: argparse.Namespace, devices: Sequence[str]) -> list:
    """The configured agents of ``devices``; ValueError naming the flag when one is malformed or missing."""
    from hwnas.controller.fleet import agents

    endpoints = []
    for text in args.agent or []:
        if "=" in text:
            endpoints.append(agents.parse_agent(text))
        elif len(devices) == 1:
            endpoints.append(agents.AgentEndpoint(devices[0], text))
        else:
            raise ValueError(f"--agent {text!r}: with several device keys {list(devices)}, say which one it serves: "
                             f"--agent KEY={text}")
    if args.agents:
        endpoints += agents.load_agents(args.agents)
    missing = sorted(set(devices) - {ep.device_key for ep in endpoints})
    if missing and not args.listen:
        raise ValueError(f"no agent given for device key(s) {missing}; use --agent KEY=HOST:PORT, --agents FILE, "
                         "or --listen HOST:PORT for agents that dial in")
    return [ep for ep in endpoints if ep.device_key in devices]


def fleet_config(args: argparse.Namespace, devices: Sequence[str], note: Callable[[str], None],
                 on_done: Callable[[str, str], None] = lambda key, arch_id: None):
    """The typed FleetConfig the flags describe, checked before anything starts."""
    from hwnas.controller.fleet import FleetConfig
    from hwnas.controller.fleet.client import AgentClient
    from hwnas.protos.auth import read_token

    endpoints = endpoints_from_args(args, devices)
    isolated = [k for keys in args.isolated or [] for k in keys]
    unknown = sorted(set(isolated) - set(devices))
    if unknown:
        raise ValueError(f"--isolated names {unknown}, which are not device keys of this command ({list(devices)})")
    connect = common.connector(args) if endpoints else AgentClient
    golden = None if args.no_golden else GoldenPolicy(every_jobs=args.golden_every, every_s=args.golden_minutes * 60,
                                                       threshold=args.golden_threshold)
    return FleetConfig(endpoints=endpoints, connect=connect, lease_s=args.lease_seconds, listen=args.listen,
                       listen_tls=common.server_tls(args) if args.listen else None, token=read_token(args.token_file),
                       isolated=isolated, note=note, on_done=on_done, golden=golden)


def check_agents(config, timeout_s: float) -> None:
    """Fail early, naming the configured agents that do not answer and why (ConnectionError)."""
    from hwnas.controller.fleet import agents

    if config.endpoints:
        agents.wait_for_agents(config.endpoints, timeout_s, config.connect)
