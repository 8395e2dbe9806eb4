"""The AutoGO benchmark in a short form (full form: python -m benchmarks.autogo)."""

from pathlib import Path

from benchmarks.autogo import _nb201_graph, best_nb201_cell, build, interleaved, live, mutation_round
from hwnas.controller.fleet.local_agent import LocalAgent
from hwnas.controller.graph.zoo import resnet50


def test_autogo_benchmark_short_form(tmp_path: Path) -> None:
    built = build(tmp_path, samples=6, vocab=300, train=20, per_graph=2, epochs=1, valid=10, test=20)
    assert built["database"]["segments"] > 50 and "psc_fold_srcc" in built["psc"] and "gnn_srcc" in built["psc"]
    round_ = mutation_round(tmp_path, resnet50(input_hw=64).canonical(), candidates=10)
    assert 5 <= round_["children"] <= 10 and round_["milp_median_ms"] > 0 and round_["round_s"] > 0
    with LocalAgent(tmp_path / "cache") as agent:
        result = live(tmp_path, agent, "nb201", ["--space", "nb201", "--arch", best_nb201_cell()], 1, 1, 2,
                      ["--protocol", "fixed", "--param", "count=3"])
    assert result["evaluated"] == 3 and result["front"] and result["run"]["metric"] == "latency"
    ratios = interleaved(_nb201_graph(best_nb201_cell()), tmp_path / "run-nb201", count=3, rounds=2)
    assert all(0.1 < r < 10 for r in ratios.values())
