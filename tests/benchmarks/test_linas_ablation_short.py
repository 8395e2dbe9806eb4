"""The LINAS ablation in a short form (full form: python -m benchmarks.linas_ablation)."""

from benchmarks.linas_ablation import VARIANTS, TablePredictor, ablation
from hwnas.controller.data import nb201_table
from hwnas.controller.spaces import get_space


def test_table_predictor_returns_each_cells_own_row() -> None:
    space = get_space("nb201")
    rows = [r for r in nb201_table()[:400:37] if space.has_network(space.from_string(r["arch_str"]))]
    encodings = [space.from_string(r["arch_str"]) for r in rows]
    assert TablePredictor("lat_ms_pixel3").predict_encodings(encodings).tolist() == [float(r["lat_ms_pixel3"])
                                                                                     for r in rows]


def test_linas_ablation_short_form() -> None:
    (row,) = ablation(["pixel3"], seeds=1, nsga2_evals=20, linas_evals=20, population=10, inner_evals=200)["pixel3"]
    assert 0 < row["nsga2_hv"] <= 1.21
    for name in VARIANTS:
        assert 0 < row[name]["final_hv"] <= 1.21
        assert row[name]["evals_to_reach"] is None or 1 <= row[name]["evals_to_reach"] <= 20
    # the perfect variants did use the truth: their searches differ from plain LINAS's after the first population
    assert len({row[name]["final_hv"] for name in VARIANTS}) > 1


def test_linas_ablation_runs_a_gennape_variant(small_gennape) -> None:
    (row,) = ablation(["pixel3"], seeds=1, nsga2_evals=12, linas_evals=12, population=6, inner_evals=60,
                      gennape=str(small_gennape))["pixel3"]
    assert 0 < row["gennape"]["final_hv"] <= 1.21
