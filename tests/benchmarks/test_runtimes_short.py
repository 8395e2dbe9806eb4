"""The runtimes benchmark in a short form (full form: python -m benchmarks.runtimes)."""

import pytest

from benchmarks.runtimes import RUNTIMES, run

pytest.importorskip("litert_torch", reason="the tflite extra (litert-torch) is not installed")


def test_runtimes_benchmark_short_form() -> None:
    fp32_only = tuple(r for r in RUNTIMES if r[2] != "tflite-int8")
    r = run(models=1, count=20, runtimes=fp32_only)
    assert set(r["median_ms"]) == {"onnxruntime", "litert fp32", "pytorch eager"}
    assert all(v > 0 for v in r["median_ms"].values()) and r["ratio_to_ort"]["onnxruntime"] == 1.0
    assert set(r["median_convert_s"]) == {"tflite"}
