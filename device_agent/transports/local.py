"""``local``: the tool runs on the agent's own host, as a child process in its own process group."""

from __future__ import annotations

import os
import platform
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from device_agent import host
from device_agent.transports.base import CommandResult, DeviceFacts, RunningCommand, Transport


class LocalCommand(RunningCommand):
    def __init__(self, command: str) -> None:
        self.command = command
        self._t0 = time.perf_counter()
        # Its own session, so a kill reaches the tool's children too (a shell pipeline, a Python launcher).
        self._process = subprocess.Popen(command, shell=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True, errors="replace", start_new_session=True)
        self._killed = threading.Event()

    def kill(self) -> None:
        self._killed.set()
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


class LocalTransport(Transport):
    kind = "local"

    @property
    def name(self) -> str:
        return "local"

    @property
    def host_identity(self) -> str:
        return host.host_id()  # the same host as the agent's in-process backends

    def connect(self) -> None:
        """Nothing to reach."""

    def facts(self) -> DeviceFacts:
        return DeviceFacts(hostname=host.hostname(), cpu_model=host.cpu_model(), cores_logical=os.cpu_count() or 1,
                           cores_physical=host.physical_cores(), memory_total_bytes=host.memory_total_bytes(),
                           os=platform.platform(), machine=platform.machine())

    def scratch_root(self) -> str:
        return tempfile.gettempdir()

    def push(self, local: Path, remote: str) -> None:
        shutil.copyfile(local, remote)

    def start(self, command: str) -> LocalCommand:
        return LocalCommand(command)

    def which(self, tool: str) -> str | None:
        return shutil.which(tool)

    def stop_matching(self, pattern: str) -> None:
        """Killing the process group is enough here."""
