"""The computation-graph IR: build, hash, count, and convert to and from ONNX."""

from controller.graph.builder import GraphBuilder
from controller.graph.ir import ComputationGraph, Node
from controller.graph.ops import OPS, ShapeError

__all__ = ["OPS", "ComputationGraph", "GraphBuilder", "Node", "ShapeError"]
