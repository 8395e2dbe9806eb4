"""Transports, looked up by the scheme of ``--via``: ``local``, ``adb[:SERIAL]``, ``ssh://USER@HOST[:PORT]``.

A transport's module (and its client library: paramiko for SSH) is imported only when it is picked.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from hwnas.device_agent.transports.base import CommandResult, DeviceFacts, RunningCommand, Transport, TransportError

# scheme -> (module:Class, the extra its client needs, or "")
TRANSPORTS: dict[str, tuple[str, str]] = {
    "local": ("hwnas.device_agent.transports.local:LocalTransport", ""),
    "adb": ("hwnas.device_agent.transports.adb:AdbTransport", ""),
    "ssh": ("hwnas.device_agent.transports.ssh:SshTransport", "agent-ssh"),
}
# Which --via options each transport takes (the rest are refused by name).
OPTIONS: dict[str, tuple[str, ...]] = {"local": (), "adb": ("adb", "cpu_mask"),
                                       "ssh": ("key_file", "known_hosts", "remote_dir")}

__all__ = ["OPTIONS", "TRANSPORTS", "CommandResult", "DeviceFacts", "RunningCommand", "Transport",
           "TransportError", "open_transport", "scheme_of"]


def scheme_of(via: str) -> str:
    scheme = "ssh" if via.startswith("ssh://") else via.partition(":")[0]
    if scheme not in TRANSPORTS:
        raise ValueError(f"--via must be local, adb[:SERIAL] or ssh://USER@HOST[:PORT], got {via!r}")
    return scheme


def open_transport(via: str, agent_tag: str, options: Mapping[str, str] | None = None) -> Transport:
    """The transport ``via`` names, configured by ``options``; ValueError saying what is wrong."""
    scheme = scheme_of(via)
    given = {k: v for k, v in (options or {}).items() if v}
    unknown = sorted(set(given) - set(OPTIONS[scheme]))
    if unknown:
        flags = ", ".join("--" + k.replace("_", "-") for k in unknown)
        raise ValueError(f"{flags} do(es) not apply to --via {via}")
    target, extra = TRANSPORTS[scheme]
    module_name, _, class_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except ImportError as exc:
        raise ValueError(f"--via {via} needs {exc.name}: pip install 'hwnas[{extra}]'") from None
    if scheme == "local":
        return cls(agent_tag)
    if scheme == "adb":
        return cls(agent_tag, serial=via.partition(":")[2], **given)
    return cls(agent_tag, via, **given)
