"""``hwnas fleet``: the lab's agents, dialled or dialled-in: list them with their keys' golden-model health,
forget stale registrations, clear a quarantined device key."""

from __future__ import annotations

import argparse
from pathlib import Path

from hwnas.controller.cli import common
from hwnas.controller.cli.common import (
    add_client_security,
    connector,
    dataset_exists,
    db_target,
    fail,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
    fleet = sub.add_parser("fleet", help="the lab's agents").add_subparsers(
        dest="fleet_command", required=True, metavar="SUBCOMMAND")
    fl = fleet.add_parser("ls", help="agents (configured and dialled-in): health, identity, current job, queue depth")
    fl.add_argument("--agents", type=Path, metavar="FILE", help="TOML [[agents]] key/address: agents to dial")
    fl.add_argument("--db", type=db_target, default=None,
                    help="dataset whose queue, leases and dialled-in agents to show")
    add_client_security(fl)
    fl.set_defaults(func=cmd_fleet_ls)
    ff = fleet.add_parser("forget", help="drop registrations of agents that dialled in (stopped or replaced ones)")
    ff.add_argument("agents", nargs="*", metavar="NAME|AGENT_ID", help="agents to forget, by name or agent id")
    ff.add_argument("--stale", action="store_true", help="forget every stale agent (silent for 3 heartbeats)")
    ff.add_argument("--db", type=db_target, required=True)
    ff.set_defaults(func=cmd_fleet_forget)
    fc = fleet.add_parser("clear", help="lift the quarantine of device keys whose golden-model check drifted")
    fc.add_argument("keys", nargs="+", metavar="KEY", type=common.DEVICE_KEY, help="device keys to clear")
    fc.add_argument("--rebaseline", action="store_true",
                    help="the change is meant (new firmware, a new board): the next checks form a new baseline")
    fc.add_argument("--db", type=db_target, required=True)
    fc.set_defaults(func=cmd_fleet_clear)


def cmd_fleet_ls(args: argparse.Namespace) -> int:
    from hwnas.controller.fleet import registered, survey
    from hwnas.controller.fleet.agents import load_agents
    from hwnas.controller.fleet.golden import key_health
    from hwnas.controller.reporting.tables import text_table
    from hwnas.controller.store import Store

    if not args.agents and not args.db:
        return fail("fleet ls", ValueError("give --agents FILE (agents to dial), --db PATH (agents that dialled "
                                            "in), or both"))
    if args.db and not dataset_exists(args.db):
        return fail("fleet ls", FileNotFoundError(f"no dataset at {args.db}"))
    try:
        endpoints = load_agents(args.agents) if args.agents else []
        connect = connector(args) if endpoints else None
    except (ValueError, OSError) as exc:
        return fail("fleet ls", exc)
    store = Store(args.db) if args.db else None
    try:
        rows = survey(endpoints, connect, store) if endpoints else []
        rows += registered(store) if store is not None else []
        keys = key_health(store) if store is not None else []
    finally:
        if store is not None:
            store.close()
    quarantined = {k["device_key"]: k["reason"] for k in keys if k["state"] == "quarantined"}
    header = ("device key", "address", "health", "name", "version", "backends", "current job", "queued")
    table = [header] + [(r.device_key, r.address, "QUARANTINED" if r.device_key in quarantined else r.health,
                         r.name, r.version, r.backends, r.current_job, str(r.queued_for_key)) for r in rows]
    print(text_table(table, numbers_right=False) if rows else "no agents")
    if keys:
        print("\ngolden-model checks (the reference network per device key; docs/protocol.md)")
        print(text_table([("device key", "state", "checks", "baseline", "last check", "drift")] + [
            (k["device_key"], k["state"], str(k["checks"]), k["baseline"],
             "" if k["last_check_ms"] is None else f"{k['last_check_ms']:.3f} ms",
             "" if k["drift"] is None else f"{k['drift']:+.1%}") for k in keys], numbers_right=False))
    for key, why in quarantined.items():
        print(f"{key} is quarantined: {why}\n  (`hwnas fleet clear {key} --db {args.db}` once the device is "
              "fixed; add --rebaseline if the change is meant)")
    return 0 if all(r.health in ("SERVING", "healthy") for r in rows) and not quarantined else 1


def cmd_fleet_clear(args: argparse.Namespace) -> int:
    from hwnas.controller.store import Store

    if not dataset_exists(args.db):
        return fail("fleet clear", FileNotFoundError(f"no dataset at {args.db}"))
    with Store(args.db) as store:
        quarantined = store.quarantined_keys()
        unknown = sorted(set(args.keys) - set(quarantined))
        if unknown and not args.rebaseline:
            return fail("fleet clear", ValueError(
                f"device key(s) {unknown} are not quarantined" + (f"; quarantined: {sorted(quarantined)}"
                                                                   if quarantined else "; none is")))
        by = common.submitter(args)
        for key in args.keys:
            store.clear_quarantine(key, by, args.rebaseline)
            print(f"{key}: " + ("cleared" if key in quarantined else "not quarantined")
                  + ("; its next golden checks form a new baseline" if args.rebaseline else
                     "; its next golden check is judged against the same baseline"))
    return 0


def cmd_fleet_forget(args: argparse.Namespace) -> int:
    import time

    from hwnas.controller.store import Store

    if not args.agents and not args.stale:
        return fail("fleet forget", ValueError("name the agents to forget (NAME or AGENT_ID), or give --stale"))
    if not dataset_exists(args.db):
        return fail("fleet forget", FileNotFoundError(f"no dataset at {args.db}"))
    with Store(args.db) as store:
        known = store.registered_agents()
        now = time.time()
        unknown = sorted(set(args.agents) - {a.name for a in known} - {a.agent_id for a in known})
        if unknown:
            return fail("fleet forget", ValueError(f"no registered agent named {unknown}; `hwnas fleet ls --db "
                                                    f"{args.db}` lists them"))
        chosen = [a for a in known if a.name in args.agents or a.agent_id in args.agents
                  or (args.stale and not a.healthy(now))]
        forgotten = store.forget_agents([a.agent_id for a in chosen])
    for agent in chosen:
        print(f"forgot {agent.name} ({agent.agent_id[:8]}, {agent.device_key})")
    print(f"{forgotten} registration(s) forgotten")
    return 0
