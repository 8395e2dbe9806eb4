"""Epoch-level progress of long fits, for whoever listens (a CLI's progress bar).

A GNN fit can take minutes; a bar that moves once per fit says nothing meanwhile. Rather than thread a
callback through every predictor's ``fit``, the caller sets a listener for the duration of a ``with`` block
and the training loops report to it. The listener lives in a ``contextvars`` variable: a fit in another
thread or outside the block reports to nobody.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

EpochListener = Callable[[int, int, float], None]  # (epochs done, epochs at most, validation loss)

_listener: ContextVar[EpochListener | None] = ContextVar("hwnas_epoch_listener", default=None)


@contextmanager
def epochs_reported_to(listener: EpochListener) -> Iterator[None]:
    """Fits run inside the block report each finished epoch to ``listener``."""
    token = _listener.set(listener)
    try:
        yield
    finally:
        _listener.reset(token)


def report_epoch(done: int, epochs: int, valid_loss: float) -> None:
    listener = _listener.get()
    if listener is not None:
        listener(done, epochs, valid_loss)
