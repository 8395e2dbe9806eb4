"""The one value an architecture travels as, from a search or a campaign to the fleet and back."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

from hwnas.controller.graph import ComputationGraph


@dataclass(frozen=True)
class Candidate:
    """One architecture in every form the controller knows (as archai's ``ArchaiModel(arch, archid, metadata)``).

    ``space`` names where it comes from; ``encoding`` is its point in that space, empty for a graph that has
    none (an AutoGO mutant, one layer); ``arch`` is the space's string form (the name the store and the
    replay backend know it by); ``graph`` is the network itself, and its content hash is the ``arch_id``.
    """

    space: str
    encoding: tuple[int, ...]
    arch: str
    graph: ComputationGraph

    @classmethod
    def of_graph(cls, space: str, arch: str, graph: ComputationGraph) -> Candidate:
        """A candidate born as a graph, with no encoding (AutoGO, layers)."""
        return cls(space, (), arch, graph)

    @property
    def arch_id(self) -> str:
        return self.graph.arch_id

    @property
    def encoding_text(self) -> str:
        """The encoding as the store keeps it: space-separated integers."""
        return " ".join(map(str, self.encoding))


@dataclass(frozen=True)
class ModelFile:
    """A user's model known only by its bytes (``hwnas profile MODEL``): there is no CG to compute static
    objectives from, so only measured ones apply, and the ``arch_id`` is the bytes' sha256 (a file measured
    twice in one evaluator is measured once, like a network)."""

    arch: str  # the file's name
    data: bytes = field(repr=False)
    own_format: str  # "onnx" or "tflite"
    space: str = "file"
    encoding: tuple[int, ...] = ()

    @cached_property
    def arch_id(self) -> str:
        return "file-" + hashlib.sha256(self.data).hexdigest()[:32]


Measurable = Candidate | ModelFile  # what the evaluator measures: a network, or a model file as given
