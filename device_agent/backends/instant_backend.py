"""``instant``: a backend that runs nothing and returns at once.

Named for what it is: it measures the fabric (queueing, gRPC, scheduling, recording), never a model.
Benchmarks of controller throughput use it; it accepts any bytes and one input of shape (1,).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hwnas.device_agent.backends.base import Backend, InputSpec, LoadedModel
from hwnas.device_agent.power.base import Availability


class InstantModel(LoadedModel):
    threads = 1
    watch_host = False  # it times nothing, so nothing can disturb it; the dispatch benchmark stays lean

    @property
    def inputs(self) -> list[InputSpec]:
        return [InputSpec("input", (1,), "float32")]

    def bind(self, shapes: dict[str, tuple[int, ...]]) -> Callable[[], None]:
        return lambda: None


class InstantBackend(Backend):
    name = "instant"
    runtime_name = "instant (no model is run)"

    @classmethod
    def probe(cls) -> Availability:
        return Availability(True, "runs nothing: for measuring the fabric itself")

    @classmethod
    def runtime_version(cls) -> str:
        return "0"

    def load(self, model_path: Path, threads: int) -> InstantModel:
        return InstantModel()
