"""A power meter that samples instantaneous watts in a thread over the window and integrates them.

For sources that report power, not energy: pre-Volta NVIDIA boards, INA2xx sensors under Linux's hwmon, USB
meters on a serial port. The integral is by trapezoids between samples; the record gives the period the
samples actually came at (a slow meter's is its own, not the one asked for).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

from hwnas.device_agent.power.base import EnergyReading, PowerMeter


class SampledMeter(PowerMeter):
    def __init__(self, read_watts: Callable[[], float], source: str, period_s: float) -> None:
        self._read, self._source, self._period_s = read_watts, source, period_s
        self._stop = threading.Event()
        self._samples: list[tuple[float, float]] = []  # (perf_counter s, W)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        watts = self._read()
        self._samples.append((time.perf_counter(), watts))

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._period_s):
                self._sample()
        except Exception as exc:  # noqa: BLE001 - handed to stop(), which reports it as the record's failure
            self._error = exc

    def start(self) -> None:
        self._samples, self._error = [], None
        self._stop.clear()
        self._sample()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"{self._source}-sampler")
        self._thread.start()

    def poll(self) -> None:
        """The sampler thread does the reading."""

    def stop(self) -> EnergyReading:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise OSError(f"{self._source} stopped answering during the window: {self._error}") from self._error
        self._sample()
        energy = sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in itertools.pairwise(self._samples))
        window = self._samples[-1][0] - self._samples[0][0]
        period = window / (len(self._samples) - 1) if len(self._samples) > 1 else self._period_s
        return EnergyReading(source=self._source, window_s=window, energy_j=energy, sampling_period_s=period)
