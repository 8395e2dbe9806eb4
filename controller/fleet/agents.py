"""The agents a controller dials: endpoints from flags or a TOML file, and a check that they answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import tomllib

from hwnas.controller.fleet.client import AgentCallError, AgentClient
from hwnas.protos import names

Connect = Callable[[str], AgentClient]  # address -> client, with whatever TLS and token the lab uses


@dataclass(frozen=True)
class AgentEndpoint:
    device_key: str
    address: str


def parse_agent(text: str) -> AgentEndpoint:
    """'KEY=HOST:PORT'."""
    key, sep, address = text.partition("=")
    if not sep or not key or ":" not in address:
        raise ValueError(f"agent must look like KEY=HOST:PORT (e.g. rpi4-cpu-ort=10.0.0.7:50151), got {text!r}")
    return AgentEndpoint(names.device_key(key), address)


def load_agents(path: Path) -> list[AgentEndpoint]:
    """A TOML file of ``[[agents]]`` tables with ``key`` and ``address``."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read agents file {path}: {exc}") from None
    endpoints = []
    for k, entry in enumerate(data.get("agents", [])):
        if not isinstance(entry, dict) or not {"key", "address"} <= set(entry):
            raise ValueError(f"{path}: agents[{k}] needs 'key' and 'address'")
        try:
            key = names.device_key(entry["key"])
        except names.InvalidName as exc:
            raise ValueError(f"{path}: agents[{k}].key: {exc}") from None
        endpoints.append(AgentEndpoint(key, str(entry["address"])))
    if not endpoints:
        raise ValueError(f"{path} lists no [[agents]]")
    return endpoints


def wait_for_agents(endpoints: Sequence[AgentEndpoint], timeout_s: float = 10.0,
                    connect: Connect = AgentClient) -> None:
    """Fail early, naming the agents that do not answer."""
    dead = []
    for ep in endpoints:
        with connect(ep.address) as client:
            try:
                client.wait_ready(timeout_s)
            except AgentCallError as exc:
                dead.append(f"{ep.device_key}={ep.address} ({exc.details})")
    if dead:
        raise ConnectionError(f"no answer from: {'; '.join(dead)}")
