"""The tool-fidelity benchmark in a short form (full form: python -m benchmarks.tools)."""

import pytest

from benchmarks.tools import run

pytest.importorskip("litert_torch", reason="the tflite extra (litert-torch) is not installed")
pytest.importorskip("openvino", reason="the agent-openvino extra is not installed")


def test_tools_benchmark_short_form() -> None:
    r = run(per_family=1, rounds=2, count=10, families=("nb201",))  # the full form: three families
    assert set(r["pairs"]) == {"benchmark_app vs openvino", "litert-benchmark vs litert"}
    for pair in r["pairs"].values():
        assert [n["family"] for n in pair["networks"]] == ["nb201"]
        assert pair["median_ratio"] > 0 and pair["tool_overhead_s"] > pair["inproc_overhead_s"]
