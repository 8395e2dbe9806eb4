"""The graph-export benchmark in a short form (full form: python -m benchmarks.graph_export)."""

from benchmarks.graph_export import run


def test_graph_export_benchmark_short_form() -> None:
    result = run(samples=3, spaces=("nb201", "ofa-mbv3"))
    assert set(result) == {"nb201", "ofa-mbv3"}
    for stages in result.values():
        assert set(stages) == {"graph", "onnx", "bytes"} and all(v > 0 for v in stages.values())
