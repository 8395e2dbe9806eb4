"""Where a vendor benchmark tool runs: the contract every transport implements.

A transport runs commands on one physical device (the agent's own host, an Android phone over ADB, a board
over SSH), copies a model into a scratch folder there and removes it afterwards, and says what the device
is. Tool backends know nothing of how a command reaches the device; transports know nothing of tools.

Two kinds of failure are kept apart because the controller treats them differently: a ``TransportError``
(the device went offline, refused the connection, presented a changed host key) says nothing about the
model, so the job goes back to the queue without spending an attempt; a command that ran and failed is
returned as a ``CommandResult`` for the tool to judge.
"""

from __future__ import annotations

import abc
import hashlib
import os
import secrets
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from hwnas.device_agent.errors import AgentError
from hwnas.device_agent.power.base import PowerSource


class TransportError(AgentError):
    """The device could not be reached or dropped away; retrying later (or elsewhere) can succeed."""

    status_code = "UNAVAILABLE"


@dataclass(frozen=True)
class CommandResult:
    command: str  # the exact command line as the device ran it
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    killed: bool = False  # stopped by the agent (deadline, cancel, shutdown)


@dataclass(frozen=True)
class DeviceFacts:
    """What the device says of itself; an empty or zero value where it does not tell."""

    hostname: str = ""
    cpu_model: str = ""
    cores_logical: int = 0
    cores_physical: int = 0
    memory_total_bytes: int = 0
    os: str = ""
    machine: str = ""
    properties: dict[str, str] = field(default_factory=dict)


class RunningCommand(abc.ABC):
    """A command started on the device; ``kill`` may be called from any thread, once or many times."""

    @abc.abstractmethod
    def wait(self, timeout_s: float | None) -> CommandResult:
        """Its outcome; past ``timeout_s`` it is killed and the result says so."""

    @abc.abstractmethod
    def kill(self) -> None: ...


class ProcessCommand(RunningCommand):
    """A command run by a local process (the tool itself, or the ``adb`` client carrying it), in its own
    session so that a kill reaches its children too (a shell pipeline, a Python launcher)."""

    def __init__(self, argv: str | list[str], command: str) -> None:
        self.command = command
        self._t0 = time.perf_counter()
        self._process = subprocess.Popen(argv, shell=isinstance(argv, str), stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
        self._killed = threading.Event()

    def kill(self) -> None:
        self._killed.set()
        if not hasattr(os, "killpg"):  # Windows: no process groups to signal
            self._process.kill()
            return
        try:
            os.killpg(self._process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def wait(self, timeout_s: float | None) -> CommandResult:
        try:
            out, err = self._process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            out, err = self._process.communicate()
        return CommandResult(self.command, self._process.returncode, out, err, time.perf_counter() - self._t0,
                             killed=self._killed.is_set())


class Transport(abc.ABC):
    """One physical device, reached one way. Implementations are thread-safe for one command at a time
    (the agent's FIFO gate runs one measurement at a time); ``kill`` may come from another thread."""

    kind: str  # "local", "adb", "ssh"

    def __init__(self, agent_tag: str) -> None:
        # Scratch folders are named hwnas-TAG-RANDOM: an agent sweeps its own leftovers at start without
        # touching another agent's live folder on the same device.
        self.scratch_prefix = f"hwnas-{hashlib.sha256(agent_tag.encode()).hexdigest()[:8]}-"
        self._leftovers: list[str] = []  # scratch folders a failed cleanup left; removed on the next chance
        self._lock = threading.Lock()

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """How records name the transport: "local", "adb:SERIAL", "ssh://USER@HOST:PORT"."""

    @property
    def host_identity(self) -> str:
        """A stable identity of the physical device for the controller's host gate: two agents driving one
        phone or one board must measure one at a time."""
        return hashlib.sha256(f"hwnas-device:{self.name}".encode()).hexdigest()[:16]

    @abc.abstractmethod
    def connect(self) -> None:
        """Reach the device (again); TransportError naming the cause when it cannot be reached."""

    @abc.abstractmethod
    def facts(self) -> DeviceFacts: ...

    @abc.abstractmethod
    def scratch_root(self) -> str:
        """The folder on the device under which scratch folders are made."""

    @abc.abstractmethod
    def push(self, local: Path, remote: str) -> None: ...

    @abc.abstractmethod
    def pull(self, remote: str, local: Path) -> bool:
        """Copy a file from the device; False where it does not exist (TransportError where the device is
        gone)."""

    def read_bytes(self, path: str) -> bytes | None:
        """A file's bytes (a tool's binary output), or None where it does not exist."""
        with tempfile.TemporaryDirectory(prefix="hwnas-pull-") as folder:
            local = Path(folder) / "file"
            return local.read_bytes() if self.pull(path, local) else None

    @abc.abstractmethod
    def start(self, command: str) -> RunningCommand:
        """Start a shell command line on the device."""

    def run(self, command: str, timeout_s: float | None = 60.0) -> CommandResult:
        return self.start(command).wait(timeout_s)

    def read_text(self, path: str) -> str | None:
        """A small file's text, or None where it does not exist or cannot be read."""
        done = self.run(f"cat {shlex.quote(path)}", timeout_s=30)
        return done.stdout if done.returncode == 0 else None

    def which(self, tool: str) -> str | None:
        """The tool's path on the device, or None where it is not installed there."""
        done = self.run(f"command -v {shlex.quote(tool)}", timeout_s=30)
        found = done.stdout.strip().splitlines()
        return found[0] if done.returncode == 0 and found else None

    def make_scratch(self) -> str:
        """A new, empty scratch folder on the device; earlier leftovers are removed first."""
        self.clean_leftovers()
        path = f"{self.scratch_root().rstrip('/')}/{self.scratch_prefix}{secrets.token_hex(6)}"
        done = self.run(f"mkdir -p {shlex.quote(path)}", timeout_s=30)
        if done.returncode != 0:
            raise TransportError(f"{self.name}: cannot make a scratch folder {path}: {done.stderr.strip()}")
        return path

    def remove_scratch(self, path: str) -> None:
        """Remove a scratch folder; where the device is gone, remember it and remove it on the next chance."""
        try:
            done = self.run(f"rm -rf {shlex.quote(path)}", timeout_s=60)
            if done.returncode == 0:
                return
        except TransportError:
            pass
        with self._lock:
            self._leftovers.append(path)

    def clean_leftovers(self) -> None:
        with self._lock:
            pending, self._leftovers = self._leftovers, []
        for path in pending:
            self.remove_scratch(path)

    def sweep(self) -> None:
        """Remove every scratch folder of this agent's name on the device: what a killed agent left behind."""
        pattern = f"{self.scratch_root().rstrip('/')}/{self.scratch_prefix}*"
        self.run(f"rm -rf {pattern}", timeout_s=60)

    @property
    def leftovers(self) -> list[str]:
        with self._lock:
            return list(self._leftovers)

    def pinned(self, command: str) -> str:
        """``command`` as the device should run it for a measurement (an Android phone pins it to its big
        cores); as is by default."""
        return command

    def settings(self) -> dict[str, str]:
        """How the transport sets up a measurement, for the record's runtime_settings."""
        return {"transport": self.name}

    def thermal_warnings(self) -> list[str]:
        """What the device says of its heat before a run that may make the figure untrustworthy."""
        return []

    def power_source(self) -> PowerSource | None:
        """The device's own power source (a phone's battery), or None to use the agent host's."""
        return None

    def stop_matching(self, pattern: str) -> None:
        """End every process on the device whose command line holds ``pattern`` (a scratch path, unique to
        one measurement): where ending the local end of a command leaves the remote one running."""
        try:
            self.run(f"pkill -f {shlex.quote(pattern)}", timeout_s=15)
        except TransportError:
            pass

    def close(self) -> None:  # noqa: B027 - most transports hold no connection
        """Release the connection, if the transport holds one."""

