"""The contract every power source implements.

A source is probed once (``probe``) and, when available, opened for one timed
window: ``start`` at the first timed inference, ``poll`` now and then in
between (so counters that wrap are never missed), ``stop`` after the last.
Never invent a number: an unavailable source says why instead.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass


@dataclass(frozen=True)
class Availability:
    available: bool
    detail: str


@dataclass(frozen=True)
class EnergyReading:
    source: str
    window_s: float
    energy_j: float
    sampling_period_s: float = 0.0  # 0: an energy counter read at both ends of the window


class PowerMeter(abc.ABC):
    """One measurement window on one source."""

    @abc.abstractmethod
    def start(self) -> None: ...

    @abc.abstractmethod
    def poll(self) -> None:
        """Fold the counter's progress so far into the total (cheap; called between inferences)."""

    @abc.abstractmethod
    def stop(self) -> EnergyReading: ...


class PowerSource(abc.ABC):
    name: str
    opt_in: bool = False  # probed only when asked for by name (a heavy import or helper processes)
    argument: str = ""  # what ``--power-source NAME:ARG`` names (e.g. "PORT"); empty: the source takes none

    @abc.abstractmethod
    def probe(self) -> Availability: ...

    @abc.abstractmethod
    def open(self) -> PowerMeter:
        """A meter for one window; only called when ``probe`` said available."""
