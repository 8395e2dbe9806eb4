"""The search benchmark in a short form (full form: python -m benchmarks.search)."""

from benchmarks.search import replay


def test_search_benchmark_short_form(tmp_path) -> None:
    result = replay(["pixel3"], seeds=1, nsga2_evals=20, linas_evals=20, random_evals=20, population=10,
                    inner_evals=200, work=tmp_path)
    (seed,) = result["devices"]["pixel3"]["per_seed"]
    assert 0 < seed["nsga2_hv"] <= 1.21 and 0 < seed["linas_final_hv"] <= 1.21
    assert seed["linas_evals"] is None or 1 <= seed["linas_evals"] <= 20
    assert len(result["devices"]["pixel3"]["linas_iteration_s"]) == 1
