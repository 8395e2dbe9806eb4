"""What every benchmark prints with its figures: when and on what it ran."""

from __future__ import annotations

import datetime
import platform

from hwnas.device_agent import host


def machine_line() -> str:
    return (f"{datetime.date.today().isoformat()}, {host.cpu_model()} ({host.physical_cores()} physical / "
            f"{__import__('os').cpu_count()} logical cores), {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
