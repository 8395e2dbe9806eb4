"""Start a device agent as a child process on 127.0.0.1 and stop it again.

``make demo`` and the fault tests use this to run a real agent in its own
process (so it can be sent SIGTERM or SIGKILL) rather than in-process.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

_STARTED = re.compile(r"listening on (\S+:\d+)|dialling out to")


class LocalAgent:
    """A device agent of this machine in a child process on 127.0.0.1 (``hwnas.LocalAgent``): for trying
    hwnas on one machine, the demo and the tests. ``address`` is where it listens; ``stop()`` or a ``with``
    block ends it. ``extra_args`` are ``hwnas-agent serve`` flags (``--backend litert``, ...)."""

    def __init__(self, cache_dir: str | Path, extra_args: Sequence[str] = (), start_timeout_s: float = 30.0,
                 insecure: bool = True, listen: bool = True) -> None:
        """``insecure``: plaintext on loopback (tests, demo); pass TLS flags in ``extra_args`` otherwise.

        ``listen=False`` with ``--controller HOST:PORT --device-key KEY`` in ``extra_args``: a dial-out-only
        agent (``address`` stays empty).
        """
        where = ["--host", "127.0.0.1", "--port", "0"] if listen else []
        cmd = [sys.executable, "-m", "hwnas.device_agent", "serve", *where,
               "--cache-dir", str(cache_dir), "--log-level", "WARNING", *(["--insecure"] if insecure else []),
               *extra_args]
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.output: list[str] = []
        self.errors: list[str] = []  # stderr, drained as it comes so a chatty agent never blocks on a full pipe
        found = threading.Event()
        started: list[str] = []
        self.address = ""

        def pump() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.output.append(line.rstrip("\n"))
                match = _STARTED.search(line)
                if match and not found.is_set():
                    self.address = match.group(1) or ""
                    started.append(line)
                    found.set()
            found.set()

        def drain() -> None:
            assert self.process.stderr is not None
            for line in self.process.stderr:
                self.errors.append(line.rstrip("\n"))

        threading.Thread(target=pump, daemon=True).start()
        self._drainer = threading.Thread(target=drain, daemon=True)
        self._drainer.start()
        if not found.wait(start_timeout_s) or not started:
            self.kill()
            self._drainer.join(5)
            raise RuntimeError(f"agent did not start: {self.stderr_text().strip() or 'no output'}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        """Send ``sig`` and wait for the process; returns its exit code.

        An agent still running after ``timeout_s`` is asked for its threads' stacks (SIGUSR1), killed, and
        reported with its stderr, so a hang says where it hung.
        """
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGUSR1)
            try:
                self.process.wait(2)
            except subprocess.TimeoutExpired:
                self.kill()
            self._drainer.join(5)  # the stacks, read to the end of the pipe
            raise RuntimeError(f"the agent did not stop within {timeout_s:.0f} s of {signal.Signals(sig).name}; "
                               f"its stderr:\n{self.stderr_text()[-8000:]}") from None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stderr_text(self) -> str:
        return "\n".join(self.errors)

    def __enter__(self) -> LocalAgent:
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.stop()
