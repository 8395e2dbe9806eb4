"""``local``: the tool runs on the agent's own host, as a child process in its own process group."""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
from pathlib import Path

from hwnas.device_agent import host
from hwnas.device_agent.transports.base import DeviceFacts, ProcessCommand, Transport


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

    def pull(self, remote: str, local: Path) -> bool:
        if not os.path.isfile(remote):
            return False
        shutil.copyfile(remote, local)
        return True

    def start(self, command: str) -> ProcessCommand:
        return ProcessCommand(command, command)

    def which(self, tool: str) -> str | None:
        return shutil.which(tool)

    def stop_matching(self, pattern: str) -> None:
        """Killing the process group is enough here."""
