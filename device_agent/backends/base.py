"""The contract every runtime backend implements.

A backend loads model bytes from the cache into a ``LoadedModel``; the loaded
model reports its inputs and, given concrete shapes, builds its inputs once and
returns a ``run_once`` callable that the measurement loop times. Backends know
nothing of protocols, queues or gRPC.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from hwnas.device_agent.power.base import Availability
from hwnas.device_agent.tensors import InputSpec


@dataclass(frozen=True)
class Answer:
    """A latency a backend looks up or computes instead of timing a run (replay tables, simulators)."""

    latency_ms: float
    protocol: str  # what the record says it was measured by: "replay", "simulator:zigzag@3.9.1"
    details: dict[str, float]  # protocol_details of the record
    energy_mj: float | None = None  # per inference, where the source models energy
    energy_source: str = ""  # names the model of energy (e.g. the simulated accelerator)
    no_energy_reason: str = ""


class LoadedModel(abc.ABC):
    threads: int  # intra-op threads the runtime actually uses
    answer: Answer | None = None  # set by backends that answer instead of timing
    note: str = ""  # said in every result of this model (e.g. that the value was replayed)
    watch_host: bool = True  # look for busy processes and throttling during the timed window
    # How the runtime was set up for this model, as it reports it (OpenVINO: device, hint, streams, precision);
    # every record carries it in environment.runtime_settings.
    runtime_settings: Mapping[str, str] = MappingProxyType({})
    # The ONNX file the runtime runs, where it runs one: its activations are estimated before binding, so a
    # batch that cannot fit is refused instead of growing the agent until the kernel kills it.
    onnx_path: Path | None = None
    # How long the backend took to load the model (session creation, compilation), set by the agent when it
    # loaded it: a cached session keeps the figure of its load.
    load_ms: float = 0.0

    @property
    @abc.abstractmethod
    def inputs(self) -> list[InputSpec]: ...

    @abc.abstractmethod
    def bind(self, shapes: dict[str, tuple[int, ...]]) -> Callable[[], int | None]:
        """Build inputs of these shapes once; return a callable running one inference.

        The callable returns None when the host clock around it is the right measure (CPU runtimes), or the
        inference's duration in nanoseconds as the device measured it (CUDA events around the kernels).
        """

    @property
    def keeps_op_profile(self) -> str:
        """Empty where ``op_times`` gives a profile for this model, else why not (checked before measuring, so
        a refusal costs no timed window)."""
        if type(self).op_times is LoadedModel.op_times:
            return ("this runtime keeps no per-op profile the agent can read; op_profile works with onnxruntime, "
                    "openvino, litert (CPU), torch (eager, CPU) and the tool backends benchmark-model, trtexec and "
                    "benchmark-app")
        return ""

    def op_times(self, shapes: dict[str, tuple[int, ...]], runs: int) -> list[tuple[str, str, float]] | None:
        """The runtime's own per-op profile over ``runs`` inferences at ``shapes``: (op name, op type, ms per
        inference) in execution order; None where the runtime keeps none. Run outside the timed window, so
        profiling never slows the figures it sits beside."""
        return None

    def outputs(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray] | None:
        """The model's outputs, by name and in order, for the inputs ``feed`` (after ``bind``): what the output
        check compares with the controller's reference. None where the runtime cannot give them."""
        return None

    def rearm(self) -> Callable[[], None]:
        """Fresh runtime state for a new measurement, and the abort that interrupts its inferences in
        flight (where the runtime allows it; by default it cannot).

        Called before binding, so that an abort arriving during binding's first inference reaches the
        runtime state that inference runs under. The abort is tied to this measurement: a stop that reaches
        it late, after the next measurement re-armed, must not interrupt that one.
        """
        return lambda: None


class AnsweredModel(LoadedModel):
    """A model whose backend answers without running it: no inputs, nothing to time or to watch."""

    threads = 0
    watch_host = False

    def __init__(self, answer: Answer, note: str) -> None:
        self.answer = answer
        self.note = note

    @property
    def inputs(self) -> list[InputSpec]:
        return []

    def bind(self, shapes: dict[str, tuple[int, ...]]) -> Callable[[], None]:
        return lambda: None


class Backend(abc.ABC):
    name: str
    runtime_name: str
    # The modules an in-process runtime runs on; a memory probe imports them before its baseline, so a
    # model's footprint leaves the runtime itself out. Empty for backends that run nothing here.
    runtime_modules: tuple[str, ...] = ()

    @classmethod
    @abc.abstractmethod
    def probe(cls) -> Availability:
        """Whether this host can run the backend, without importing anything heavy."""

    @classmethod
    @abc.abstractmethod
    def runtime_version(cls) -> str: ...

    @abc.abstractmethod
    def load(self, model_path: Path, threads: int) -> LoadedModel:
        """Load a cached model; raise InvalidInput when the runtime refuses the bytes."""
