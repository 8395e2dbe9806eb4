"""Explicit synchronisation for tests: wait for a condition the code under test makes true, never for time.

A sleep guesses how long another thread needs; on a loaded machine the guess is wrong and the test
reorders. ``wait_for`` re-checks a predicate until it holds and fails loudly, naming what it waited for,
if it never does within a generous bound (the bound only ends a hung test; it decides no outcome).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psutil

HANG_S = 120.0  # long enough for any loaded CI machine; reaching it means the condition never came


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = HANG_S) -> None:
    """Return once ``condition()`` is true; AssertionError naming ``what`` if it stays false ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout_s:.0f} s for {what}")
        pause.wait(0.005)


AGENT_DEBUG = ["--log-level", "DEBUG"]  # a LocalAgent's flags: it logs each call's arrival and measurement start


def logged(agent, text: str, times: int = 1) -> None:
    """Wait until a LocalAgent started with ``AGENT_DEBUG`` has logged ``text`` ``times`` times (stderr)."""
    wait_for(lambda: sum(text in line for line in agent.stderr_text().splitlines()) >= times,
             f"the agent to log {text!r} {times} time(s)")


@contextmanager
def busy_neighbour() -> Iterator[psutil.Process]:
    """A process spinning on a CPU, yielded once it has run (its CPU time grew), killed on exit."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        neighbour = psutil.Process(hog.pid)
        wait_for(lambda: neighbour.cpu_times().user > 0.05, "the busy neighbour to get going")
        yield neighbour
    finally:
        hog.kill()
        hog.wait()
