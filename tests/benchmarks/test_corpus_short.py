"""The corpus benchmark in a short form, on its smallest network (full form: python -m benchmarks.corpus)."""

from benchmarks.corpus import measure


def test_corpus_benchmark_short_form() -> None:
    row = measure("squeezenet")
    assert row["macs"] == row["fvcore_macs"] and row["arch_ids"] == 1
    assert max(row["error_13"], row["error_17"], row["error_20"]) < 1e-5
    assert 0 < row["import_mib"] <= row["weights_mib"] and row["import_s"] > 0
