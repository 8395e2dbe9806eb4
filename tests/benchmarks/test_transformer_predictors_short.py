"""The transformer-space predictor benchmark, short (full: python -m benchmarks.transformer_predictors)."""

from pathlib import Path

from benchmarks.transformer_predictors import run


def test_transformer_predictor_benchmark_short_form(tmp_path: Path) -> None:
    cache = tmp_path / "latency.csv"
    results = run(networks=20, sequence=8, inferences=3, kinds=["ridge", "flops"], cache=cache, seeds=1, sizes=(5,))
    assert set(results[5]) == {"ridge", "flops"} and 0 <= results[5]["ridge"]["mape"][0]
    assert len(cache.read_text().splitlines()) == 21  # header and one row per network: a rerun measures nothing
    again = run(networks=20, sequence=8, inferences=3, kinds=["ridge"], cache=cache, seeds=1, sizes=(5,))
    assert again[5]["ridge"] == results[5]["ridge"] and len(cache.read_text().splitlines()) == 21
