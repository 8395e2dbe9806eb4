"""The runtimes benchmark in a short form (full form: python -m benchmarks.runtimes)."""

import pytest

from benchmarks.runtimes import RUNTIMES, run

pytest.importorskip("litert_torch", reason="the tflite extra (litert-torch) is not installed")


def test_runtimes_benchmark_short_form() -> None:
    fp32_only = tuple(r for r in RUNTIMES if r[3] != "tflite-int8")
    r = run(models=1, count=20, runtimes=fp32_only)
    assert set(r["median_ms"]) == {"onnxruntime", "litert fp32", "pytorch eager", "openvino cpu", "openvino cpu f32"}
    assert all(v > 0 for v in r["median_ms"].values()) and r["ratio_to_ort"]["onnxruntime"] == 1.0
    assert set(r["median_convert_s"]) == {"tflite"}


def test_every_thread_setting_is_its_own_row_with_its_own_ratio() -> None:
    ort_ov = tuple(r for r in RUNTIMES if r[1] in ("onnxruntime", "openvino"))
    r = run(models=2, count=10, runtimes=ort_ov, threads=(1, 0))
    assert set(r["median_ms"]) == {f"{label} @ {n} threads" for label in ("onnxruntime", "openvino cpu",
                                                                         "openvino cpu f32") for n in ("1", "all")}
    assert r["ratio_to_ort"]["onnxruntime @ all threads"] == 1.0 and r["ratio_to_ort"]["openvino cpu @ 1 threads"] > 0
