"""The computation-graph IR: build, hash, count, and convert to and from ONNX."""

from hwnas.controller.graph.builder import GraphBuilder
from hwnas.controller.graph.ir import ComputationGraph, Node
from hwnas.controller.graph.ops import OPS, ShapeError

__all__ = ["OPS", "ComputationGraph", "GraphBuilder", "Node", "ShapeError"]
