"""``hwnas autobuild`` on NAS-Bench-Macro: train from the table and from a store, explain, build, and measure
the built networks on a real ONNX Runtime agent through the fleet."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from hwnas.controller.autobuild.equations import parse_equation
from hwnas.controller.autobuild.labels import labelled, parse_objective
from hwnas.controller.autobuild.restricted import RestrictedSpace, restricted_space
from hwnas.controller.autobuild.sequences import sequence_family
from hwnas.controller.cli.main import main
from hwnas.controller.data import table_path
from hwnas.controller.errors import SettingError
from hwnas.controller.learning.data import read_space_table
from hwnas.controller.spaces import get_space
from hwnas.controller.store import Store
from hwnas.controller.store.records import ArchRecord, MeasurementRecord, make_job_key
from tests.conftest import start_agent

FAST = ["--set", "epochs=15", "--set", "lr=0.003", "--torch-device", "cpu"]


@pytest.mark.parametrize("space_name", ["nas-bench-macro", "ofa-mbv3"])
def test_a_network_is_its_stage_modules(space_name: str) -> None:
    space, family = get_space(space_name), sequence_family(space_name)
    rng = np.random.default_rng(0)
    for _ in range(100):
        x = space.canonical(space.sample(rng))
        modules = family.modules(x)
        assert family.assemble(modules) == x
        codes, edges = family.sequence(x, 224 if family.resolutions else None)
        assert len(codes) == sum(len(m) for m in modules) and edges.shape == (2, len(codes) - 1)
    assert [s.count() for s in family.stages] == ([9, 27, 27] if space_name == "nas-bench-macro" else [7371] * 5)


def test_bad_objectives_equations_and_families_say_what_is_wrong() -> None:
    with pytest.raises(SettingError, match="NAME=SOURCE"):
        parse_objective("acc")
    with pytest.raises(SettingError, match="table, table:COLUMN, db:KEY or file:PATH:COLUMN"):
        parse_objective("lat=pi4")
    with pytest.raises(SettingError, match="names 'latency', which is not an objective; objectives: acc, lat"):
        parse_equation("acc - 0.5*latency", ["acc", "lat"])
    equation = parse_equation("acc - 0.5*lat", ["acc", "lat"])
    values = np.array([[90.0, 1.0], [92.0, 3.0], [94.0, 2.0]])
    assert equation.values(["acc", "lat"], values) == pytest.approx([-0.6124, -0.6124, 1.2247], abs=1e-3)
    with pytest.raises(ValueError, match="'nb201' is not one: use one of nas-bench-macro, ofa-mbv3"):
        sequence_family("nb201")


def _store_with_latency(db: Path, device: str, n: int) -> list[list[int]]:
    """``n`` NAS-Bench-Macro networks with a latency recorded for ``device`` (as an import would)."""
    space = get_space("nas-bench-macro")
    encodings = read_space_table(table_path("nas-bench-macro"), "mean_acc", space, one_per_network=True).encodings[:n]
    with Store(db) as store:
        graphs = [space.to_graph(x) for x in encodings]
        store.add_architectures(ArchRecord(g.arch_id, space.name, space.to_string(x), " ".join(map(str, x)), g.macs(),
                                           g.params(), g.to_json()) for x, g in zip(encodings, graphs, strict=True))
        store.add_records(MeasurementRecord(
            job_key=make_job_key(g.arch_id, device, "imported", "imported:test", {}, 1), arch_id=g.arch_id,
            device_key=device, backend="imported", protocol="imported:test", protocol_params={}, batch_size=1,
            input_shape=list(g.input_shape), latency_ms=1e-6 * g.macs(), stats={}, agent_name="test",
            agent_version="", started_unix_ns=0, finished_unix_ns=0) for g in graphs)
    return encodings


def test_too_few_measurements_name_how_many_are_needed(tmp_path: Path, capsys) -> None:
    db = tmp_path / "lab.db"
    _store_with_latency(db, "pi4-ort", 20)
    few = r"lat=db:pi4-ort has values for 20 nas-bench-macro network\(s\); AutoBuild needs at least 50: measure 30"
    with Store(db) as store, pytest.raises(SettingError, match=few):
        labelled(get_space("nas-bench-macro"), [parse_objective("acc=table"), parse_objective("lat=db:pi4-ort")],
                 store, minimum=50)
    code = main(["autobuild", "train", "--space", "nas-bench-macro", "--objective", "acc=table", "--objective",
                 "lat=db:pi4-ort", "--db", str(db), "--out", str(tmp_path / "t")])
    assert code == 2 and "hwnas latbench build --space nas-bench-macro --devices pi4-ort" in capsys.readouterr().err
    code = main(["autobuild", "train", "--space", "nas-bench-macro", "--objective", "acc=table", "--equation",
                 "acc - lat", "--out", str(tmp_path / "t")])
    assert code == 2 and "--equation 'acc - lat' names 'lat'" in capsys.readouterr().err
    for setting, said in (("epochs=abc", "epochs must be int"), ("seed=3", "--set seed: set by the space"),
                          ("nope=1", "no kind asked for has a setting 'nope'")):
        code = main(["autobuild", "train", "--space", "nas-bench-macro", "--objective", "acc=table", "--set", setting,
                     "--out", str(tmp_path / "t")])
        assert code == 2 and said in capsys.readouterr().err


@pytest.fixture(scope="module")
def table_trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ab") / "macro"
    assert main(["autobuild", "train", "--space", "nas-bench-macro", "--objective", "acc=table", "--objective",
                 "params=table:params", "--equation", "acc", "--equation", "acc - 0.5*params", "--max-networks",
                 "200", "--out", str(out), *FAST]) == 0
    return out


def test_explain_writes_scores_modules_and_pictures(table_trained: Path, capsys) -> None:
    assert main(["autobuild", "explain", str(table_trained), "--top-modules", "3"]) == 0
    printed = capsys.readouterr().out
    assert "kernel" in printed and "expand" in printed
    folder = table_trained / "explain"
    with open(folder / "feature_scores.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["category"], r["value"]) for r in rows} >= {("kernel", "3"), ("kernel", "5"), ("stage", "3")}
    with open(folder / "modules.csv") as handle:
        modules = list(csv.DictReader(handle))
    assert len(modules) == 2 * 3 * 3  # equations x stages x top
    assert {int(r["layers"]) for r in modules if r["stage"] == "1"} == {2}
    for name in ("feature_scores.png", "subgraphs.png"):
        assert (folder / name).stat().st_size > 10_000


def test_build_checks_built_networks_against_the_table_and_the_front(table_trained: Path, capsys) -> None:
    assert main(["autobuild", "build", str(table_trained), "--networks", "3", "--top-k", "3"]) == 0
    printed = capsys.readouterr().out
    assert "of 3 judged network(s) on or beyond the front of 200 training networks at 32 px" in printed
    with open(table_trained / "built" / "built.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["method"], r["equation"]) for r in rows} == {(m, e) for m in ("autobuild", "exhaustive")
                                                           for e in ("acc", "acc - 0.5*params")}
    space = get_space("nas-bench-macro")
    table = read_space_table(table_path("nas-bench-macro"), "mean_acc", space)
    truth = {space.to_string(x): y for x, y in zip(table.encodings, table.y, strict=True)}
    for row in rows:
        assert float(row["acc"]) == pytest.approx(truth[row["network"]])
        assert row["beyond_training_front"] in ("yes", "no")
    assert (table_trained / "built" / "front_acc_params.png").is_file()


def test_labels_from_the_store_and_built_networks_measured_by_a_real_agent(tmp_path: Path, capsys) -> None:
    db, out = tmp_path / "lab.db", tmp_path / "trained"
    _store_with_latency(db, "cpu-test", 60)
    assert main(["autobuild", "train", "--space", "nas-bench-macro", "--objective", "acc=table", "--objective",
                 "lat=db:cpu-test", "--equation", "acc - 0.5*lat", "--db", str(db), "--out", str(out), *FAST]) == 0
    # 60 networks hold 6 out: a Spearman of so few was printed, where predictors refuse fewer than 20
    printed = capsys.readouterr().out
    assert "6 held-out networks: too few to score (at least 20 are needed" in printed and "Spearman" not in printed
    agent = start_agent(tmp_path / "cache")
    try:
        code = main(["autobuild", "build", str(out), "--db", str(db), "--networks", "2", "--top-k", "2",
                     "--no-exhaustive", "--agent", f"cpu-test={agent.address}", "--insecure", "--protocol", "fixed",
                     "--param", "count=5"])
    finally:
        agent.stop()
    assert code == 0, capsys.readouterr().err
    with open(out / "built" / "built.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and all(float(r["lat"]) > 0 for r in rows)
    with Store(db, read_only=True) as store:
        measured = {r["arch"] for r in store.measurements("cpu-test") if r["backend"] == "onnxruntime"}
    assert {r["network"] for r in rows} <= measured


def test_ofa_latency_at_many_input_sizes_scores_each_size(tmp_path: Path, capsys) -> None:
    """HELP's OFA-MBv3 table times networks at 25 input sizes: each (network, size) is one labelled network and
    the resolution category gets a score per size."""
    out = tmp_path / "ofa"
    assert main(["autobuild", "train", "--space", "ofa-mbv3", "--objective",
                 "v100=table:help-ofa-mbv3:lat_ms_v100_1", "--max-networks", "300", "--out", str(out), *FAST]) == 0
    assert main(["autobuild", "explain", str(out), "--top-modules", "2"]) == 0
    with open(out / "explain" / "feature_scores.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["value"] for r in rows if r["category"] == "resolution"} == {str(r) for r in range(128, 225, 4)}
    assert {r["equation"] for r in rows} == {"-v100"}
    with open(out / "explain" / "modules.csv") as handle:
        assert {r["layers"] for r in csv.DictReader(handle)} <= {"2", "3", "4"}


def test_a_table_with_a_resolution_column_keeps_each_size_of_a_network(tmp_path: Path) -> None:
    space = get_space("ofa-mbv3")
    x = space.canonical(space.sample(np.random.default_rng(0)))
    arch = space.decode(x)
    header = [*(f"d_s{s}" for s in range(1, 6)), *(f"ks_s{s}_b{b}" for s in range(1, 6) for b in range(1, 5)),
              *(f"e_s{s}_b{b}" for s in range(1, 6) for b in range(1, 5)), "resolution", "lat"]
    values = [*arch["d"], *arch["ks"], *arch["e"]]
    path = tmp_path / "t.csv"
    path.write_text(",".join(header) + "\n" + "\n".join(",".join(map(str, [*values, r, r / 10])) for r in
                                                        (160, 224, 160)) + "\n")
    table = read_space_table(path, "lat", space, one_per_network=True)
    assert table.resolutions == [160, 224] and table.dropped_copies == 1 and list(table.y) == [16.0, 22.4]


def test_values_no_training_network_had_are_marked_unseen(tmp_path: Path, capsys) -> None:
    """The OFA accuracy table is all 224 px: the other 24 resolutions keep their initial FE-MLP score, so the
    table says so and the plot leaves them out."""
    out = tmp_path / "ofa-acc"
    assert main(["autobuild", "train", "--space", "ofa-mbv3", "--objective", "acc=table", "--max-networks", "60",
                 "--out", str(out), *FAST]) == 0
    assert main(["autobuild", "explain", str(out), "--top-modules", "1"]) == 0
    assert "(unseen)" in capsys.readouterr().out
    with open(out / "explain" / "feature_scores.csv") as handle:
        seen = {r["value"] for r in csv.DictReader(handle) if r["category"] == "resolution" and
                int(r["training_nodes"])}
    assert seen == {"224"}


def _reduced(path: Path, space: str, modules: dict, resolution: int = 224) -> Path:
    path.write_text(json.dumps({"space": space, "resolution": resolution, "top_k": 2, "modules": modules}))
    return path


def test_a_restricted_space_keeps_the_base_encodings_and_varies_whole_stages(tmp_path: Path) -> None:
    path = _reduced(tmp_path / "r.json", "nas-bench-macro", {
        "a": [["id,ir_3x3_t3"], ["ir_5x5_t6,ir_5x5_t6,id", "id,id,id"], ["ir_3x3_t3,ir_3x3_t3,ir_3x3_t3"]],
        "b": [["ir_5x5_t6,ir_5x5_t6"], ["id,id,id"], ["ir_5x5_t6,id,id"]]})
    space = restricted_space(path, "nas-bench-macro")
    base = get_space("nas-bench-macro")
    assert space.name == base.name and space.n_var == base.n_var and space.size() == 2 * 2 * 2
    assert space.allowed[1] == [(2, 2, 0), (0, 0, 0)]  # rank order, equations taking turns, no repeats
    members = {tuple(x) for x in space.enumerate()}
    assert len(members) == 8 and all(space.has_network(list(x)) for x in members)
    assert not space.has_network(base.from_string("01001111"))
    assert space.to_string(space.from_string("01220111")) == "01220111"  # strings and graphs are the base's
    assert space.repair(base.from_string("01220112")) == base.from_string("01220111")  # one layer from a module
    assert space.repair(base.from_string("12000110")) == base.from_string("22000111")
    assert space.repair(base.from_string("02000111")) == base.from_string("01000111")  # a tie: the better rank
    rng = np.random.default_rng(0)
    for _ in range(50):
        x = space.sample(rng)
        child = space.mutate(x, rng)
        a, b = space.crossover(x, child, rng)
        assert {tuple(x), tuple(child), tuple(a), tuple(b)} <= members and child != x
        changed = [m != n for m, n in zip(space.family.modules(x), space.family.modules(child), strict=True)]
        assert any(changed)


def test_evolution_on_a_restricted_space_makes_only_its_networks() -> None:
    from pymoo.optimize import minimize

    from hwnas.controller.search.evolution import inner_algorithm, integer_problem

    family = sequence_family("ofa-mbv3")
    rng = np.random.default_rng(1)
    allowed = [[m for k, m in enumerate(stage.modules()) if k % 997 == 0] for stage in family.stages]
    space = RestrictedSpace(get_space("ofa-mbv3"), family, allowed)
    made: list[list[int]] = []

    def evaluate(X: np.ndarray) -> np.ndarray:
        made.extend(X.tolist())
        return np.stack([X.sum(axis=1), -X[:, :5].sum(axis=1)], axis=1).astype(float)

    for inner in ("nsga2", "moead"):
        minimize(integer_problem(space, 2, evaluate), inner_algorithm(inner, 20, 2, 0.9, 0.02, space=space),
                 ("n_eval", 300), seed=int(rng.integers(100)), verbose=False)
    assert len(made) >= 600 and all(space.has_network(x) for x in made)
    assert len({tuple(x) for x in made}) > 100


def test_hwnas_search_on_the_space_autobuild_built(table_trained: Path, tmp_path: Path, capsys) -> None:
    """AutoBuild-NAS: `autobuild build` ranks modules, `search --restrict` searches only networks made of them."""
    built = tmp_path / "built"
    assert main(["autobuild", "build", str(table_trained), "--networks", "2", "--top-k", "2", "--no-exhaustive",
                 "--out", str(built)]) == 0
    reduced = built / "reduced_space.json"
    space = restricted_space(reduced, "nas-bench-macro")
    members = {get_space("nas-bench-macro").to_string(x) for x in space.enumerate()}
    for algo in ("linas", "nsga2"):
        out = tmp_path / algo
        assert main(["search", "--space", "nas-bench-macro", "--restrict", str(reduced), "--objectives",
                     "params,accuracy", "--device", "none", "--algo", algo, "--evals", "12", "--population", "6",
                     "--inner-evals", "120", "--db", str(tmp_path / "s.db"), "--out", str(out), "--quiet"]) == 0
        with open(out / "measured.csv") as handle:
            measured = list(csv.DictReader(handle))
        assert len(measured) == 12 and {r["arch"] for r in measured} <= members
        assert json.loads((out / "run.json").read_text())["config"]["restrict"] == str(reduced)
    capsys.readouterr()
    assert main(["search", "report", str(tmp_path / "linas"), str(tmp_path / "nsga2"), "--out",
                 str(tmp_path / "report")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert any(" linas (restricted) " in line for line in printed)  # after the group column
    assert any(" nsga2 (restricted) " in line for line in printed)
    other = _reduced(tmp_path / "other.json", "ofa-mbv3", {"a": [["k3e3,k3e3"]] * 5})
    assert main(["search", "--space", "nas-bench-macro", "--restrict", str(other), "--device", "none",
                 "--objectives", "params,accuracy", "--out", str(tmp_path / "x")]) == 2
    assert "restricts the ofa-mbv3 space, not nas-bench-macro" in capsys.readouterr().err
    bad = _reduced(tmp_path / "bad.json", "nas-bench-macro", {"a": [["id,k9"], ["id,id,id"], ["id,id,id"]]})
    assert main(["search", "--space", "nas-bench-macro", "--restrict", str(bad), "--device", "none",
                 "--objectives", "params,accuracy", "--out", str(tmp_path / "x")]) == 2
    assert "stage 1 module 'id,k9' is not 2 comma-separated layers of id, ir_3x3_t3, ir_5x5_t6" in \
        capsys.readouterr().err
