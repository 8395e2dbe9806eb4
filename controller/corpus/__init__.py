"""The reference corpus: well-known networks written as torch modules from their papers' definitions, and
their ONNX exports at several opsets. The graph IR is checked against them (import, round trip, MACs)."""
