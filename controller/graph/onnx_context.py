"""What the ONNX importer's op handlers share: the graph being built, the constants, the shapes ONNX
inferred, and the learnt values kept for ``import_onnx`` (``onnx_import`` walks the nodes; ``onnx_ops`` and
``onnx_layout_ops`` turn each into CG nodes)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

from hwnas.controller.graph.builder import GraphBuilder
from hwnas.controller.graph.onnx_reading import evaluate_constant


@dataclass
class ImportContext:
    builder: GraphBuilder
    consts: dict[str, np.ndarray]
    value_to_node: dict[str, int]
    shapes: dict[str, tuple[int, ...]]
    unsupported: Counter[str] = field(default_factory=Counter)
    initializers: dict[str, onnx.TensorProto] = field(default_factory=dict)
    folded: dict[str, tuple[onnx.NodeProto, int]] = field(default_factory=dict)  # constant -> (node, output)
    opset: int = 17
    # learnt values by builder node, under the suffixes the export names them by (weight, bias, scale, ...),
    # computed only when asked for (``import_onnx``): ``consts`` holds large weights as zero-stride stand-ins
    weights: dict[int, dict[str, Callable[[], np.ndarray]]] = field(default_factory=dict)

    def keep(self, index: int, **values: Callable[[], np.ndarray] | float | None) -> int:
        kept = self.weights.setdefault(index, {})
        for key, value in values.items():
            if value is not None:
                kept[key] = value if callable(value) else (lambda v=value: np.float32(v))
        return index

    def lazy(self, value: str, transform: Callable[[np.ndarray], np.ndarray] = lambda v: v
             ) -> Callable[[], np.ndarray] | None:
        """The real value of the constant ``value`` (transformed), computed when asked; None for no value."""
        return (lambda: transform(self.value(value))) if value else None

    def value(self, name: str) -> np.ndarray:
        """A constant's real value: decoded from its initializer, or recomputed from the real values of what
        it was folded from (an exporter's Identity or Unsqueeze on a weight)."""
        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        if name in self.folded:
            node, position = self.folded[name]
            inputs = {v: self.value(v) for v in node.input if v}
            return evaluate_constant(node, inputs, self.opset)[position]
        return self.consts[name]

    def node_of(self, value: str) -> int:
        return self.value_to_node[value]

    def is_const(self, value: str) -> bool:
        return value in self.consts


def attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def decode(value):
    return value.decode() if isinstance(value, bytes) else value



Handler = Callable[[ImportContext, onnx.NodeProto, dict], int | list[int] | None]  # a CG node per ONNX output
