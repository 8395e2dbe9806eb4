"""The predictor benchmark in a short form (full form: python -m benchmarks.predictors)."""

import itertools

import pytest

from benchmarks.predictors import noise_ceiling, repeatability, run, swapped_twin
from hwnas.controller.spaces.nb201 import EDGES


def test_predictor_benchmark_short_form() -> None:
    results, wall = run("lat_ms_latbench_desktop_cpu_i7_7820x", ["ridge", "gcn"], seeds=1, n_train=100, n_valid=20,
                        rows=300, configs={"gcn": {"hidden": 32, "epochs": 2}})
    assert [r.kind for r in results] == ["ridge", "gcn"] and wall > 0
    assert all(0 <= r.metrics["brpnas_within_10pct"] <= 1 for r in results)


def test_a_whole_cg_gnn_short_form() -> None:
    """gcn-cg reads whole CGs: the benchmark builds them for any such kind, not only for kgnn."""
    results, _ = run("lat_ms_latbench_desktop_cpu_i7_7820x", ["gcn-cg"], seeds=1, n_train=60, n_valid=20, rows=120,
                     configs={"gcn-cg": {"readout": "additive", "hidden": 16, "epochs": 2}})
    assert results[0].metrics["spearman"] == results[0].metrics["spearman"]  # a number: the fit ran


def test_noise_ceiling_of_the_i7_column() -> None:
    ceiling = noise_ceiling("lat_ms_latbench_desktop_cpu_i7_7820x")
    assert ceiling["cells"] > 5000  # NB-201 has 15,284 connected cells but 9,444 distinct networks
    assert 0.3 < ceiling[1] < ceiling[5] < ceiling[10] < 1.0


def test_swapped_twins_are_one_network_with_nodes_1_and_2_renumbered() -> None:
    rename = {0: 0, 1: 2, 2: 1, 3: 3}
    twins = 0
    for cell in itertools.product(range(5), repeat=6):
        twin = swapped_twin(list(cell))
        if twin is None:
            continue
        twins += 1
        edges = {(rename[src], rename[to], op) for (to, src), op in zip(EDGES, cell, strict=True) if op}
        assert edges == {(src, to, op) for (to, src), op in zip(EDGES, twin, strict=True) if op}  # dead ones too
        assert swapped_twin(list(twin)) == cell
    assert twins == 5**5 - 5**3  # edge 1->2 none, and not its own twin


def test_repeatability_short_form() -> None:
    rep = repeatability("lat_ms_latbench_desktop_cpu_i7_7820x", ["ridge"], seeds=1)
    assert rep["pairs"] > 1000 and 0 < rep["twins"] <= 1
    assert rep["ceiling"] ** 2 == pytest.approx(rep["twins"]) and -1 <= rep["ridge"] <= 1


def test_layerwise_benchmark_short_form(tmp_path) -> None:
    from benchmarks.layerwise import bench, device_seconds, measure
    from hwnas.controller.learning.jobs import bench_table

    measure(tmp_path / "l.db", tmp_path / "cache", networks=14, count=2)
    results, n = bench(tmp_path / "l.db", ["layerwise", "ridge"], seeds=1, n_train=6, n_valid=2)
    assert [r.kind for r in results] == ["layerwise[isolated]", "layerwise[op-profiles]", "layerwise[kernels]",
                                         "ridge"] and 10 <= n <= 14
    assert all(0 <= r.metrics["brpnas_within_10pct"] <= 1 for r in results)
    assert [row[0] for row in bench_table(results)[1:]] == [r.kind for r in results]
    spent = device_seconds(tmp_path / "l.db")
    assert spent["networks"] == n and 0 < spent["op_profiles_s"] < spent["networks_s"] and spent["layers"] > 0


def test_transfer_benchmark_short_form() -> None:
    from benchmarks.transfer import run

    for family, target in (("nb201", "lat_ms_gold_6226"), ("help-fbnet", "lat_ms_pixel2"),
                           ("help-ofa-mbv3", "lat_ms_v100_1")):
        points = run(family, target, ["ridge", "sources"], [5, 20], seeds=1, n_test=100, pretrain=200, rows=400,
                     selections=("random", "active"))
        assert {(p.n, p.label) for p in points} == {(n, m) for n in (5, 20) for m in
                                                    ("ridge", "sources", "ridge active", "sources active")}
        assert all(-1 <= p.spearman <= 1 and 0 <= p.ndcg_at_10 <= 1 for p in points), family
