"""A first-come, first-served gate: one measurement at a time, the rest wait in order.

A plain lock makes no ordering promise; here each caller takes a ticket and
proceeds only when its ticket is at the head of the queue, so ``Profile``
calls are served in arrival order and the waiting time is known.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from hwnas.device_agent.errors import MeasurementStopped

_POLL_S = 0.05  # how often a waiter re-checks whether its caller gave up


class FifoGate:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()
        self._closed_reason: str | None = None

    @property
    def depth(self) -> int:
        """Calls holding or waiting for the gate."""
        with self._cond:
            return len(self._queue)

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed_reason is not None

    def close(self, reason: str) -> None:
        """Refuse new callers and wake every waiter with ``reason``; the holder keeps its turn."""
        with self._cond:
            self._closed_reason = reason
            self._cond.notify_all()

    @contextmanager
    def turn(self, deadline: float | None, gave_up: Callable[[], bool]) -> Iterator[float]:
        """Wait for this caller's turn; yields the seconds waited.

        ``deadline`` is a ``time.monotonic`` instant; ``gave_up`` says whether the
        caller went away (cancelled RPC). Either ends the wait with MeasurementStopped.
        """
        ticket = object()
        t0 = time.monotonic()
        with self._cond:
            if self._closed_reason:
                raise MeasurementStopped(self._closed_reason, "UNAVAILABLE")
            self._queue.append(ticket)
            ahead = len(self._queue) - 1
            try:
                while self._queue[0] is not ticket:
                    if self._closed_reason:
                        raise MeasurementStopped(self._closed_reason, "UNAVAILABLE")
                    if gave_up():
                        raise MeasurementStopped("caller cancelled while queued", "CANCELLED")
                    if deadline is not None and time.monotonic() >= deadline:
                        raise MeasurementStopped(
                            f"deadline passed after {time.monotonic() - t0:.3f} s in the queue "
                            f"({ahead} call(s) were ahead)",
                            "DEADLINE_EXCEEDED",
                        )
                    self._cond.wait(_POLL_S)
                if self._closed_reason:  # the holder left after the gate closed: no new turn begins
                    raise MeasurementStopped(self._closed_reason, "UNAVAILABLE")
            except BaseException:
                self._queue.remove(ticket)
                self._cond.notify_all()
                raise
        try:
            yield time.monotonic() - t0
        finally:
            with self._cond:
                self._queue.popleft()
                self._cond.notify_all()
