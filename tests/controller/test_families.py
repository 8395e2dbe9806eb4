"""Architecture families beyond NB-201: each space rebuilds the benchmark's exact network (params and MACs
equal its table's), exports ONNX that runs, and its table serves as labels and as an accuracy evaluator."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from hwnas.controller.cli.main import main
from hwnas.controller.data import table_rows
from hwnas.controller.graph.onnx_export import to_onnx_bytes
from hwnas.controller.search.objectives import accuracy_evaluator
from hwnas.controller.spaces import get_space

MACRO = get_space("nas-bench-macro")


def test_nas_bench_macro_worked_example_matches_the_readme() -> None:
    x = MACRO.from_string("02012100")
    graph = MACRO.to_graph(x)
    assert (graph.params(), graph.macs()) == (890_666, 47_327_744)
    assert MACRO.decode(x)["layers"][:3] == ["id", "ir_5x5_t6", "id"]
    assert MACRO.to_string(MACRO.encode(MACRO.decode(x))) == "02012100"


def test_nas_bench_macro_networks_have_the_tables_params_and_macs() -> None:
    rows = table_rows("nas-bench-macro")
    assert len(rows) == 6561
    for row in rows:
        graph = MACRO.to_graph(MACRO.from_string(row["arch"]))
        assert (graph.params(), graph.macs()) == (int(row["params"]), int(row["flops"])), row["arch"]


def test_nas_bench_macro_twins_are_one_network_as_the_benchmark_trained_them() -> None:
    for row in table_rows("nas-bench-macro"):
        x = MACRO.from_string(row["arch"])
        assert "".join(map(str, MACRO.network_key(x))) == row["trained_arch"], row["arch"]
    a, b = MACRO.from_string("00000001"), MACRO.from_string("00000010")
    assert MACRO.to_graph(a).arch_id == MACRO.to_graph(b).arch_id  # the same function, the same CG


def test_nas_bench_macro_exports_a_network_onnxruntime_runs() -> None:
    graph = MACRO.to_graph(MACRO.from_string("12121212"))
    session = ort.InferenceSession(to_onnx_bytes(graph), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: np.zeros((1, 3, 32, 32), np.float32)})
    assert out.shape == (1, 10)


@pytest.mark.parametrize("text", ["0201210", "02012103", "0201210x", ""])
def test_a_bad_nas_bench_macro_key_names_the_format(text: str) -> None:
    with pytest.raises(ValueError, match="8 digits 0-2"):
        MACRO.from_string(text)


def test_the_spaces_table_is_its_accuracy_evaluator() -> None:
    row = next(r for r in table_rows("nas-bench-macro") if r["arch"] == "02012100")
    candidate = MACRO.candidate(MACRO.from_string("02012100"))
    assert accuracy_evaluator("table", MACRO)([candidate]) == [float(row["mean_acc"])]
    assert accuracy_evaluator("table:test_acc_seed1", MACRO)([candidate]) == [float(row["test_acc_seed1"])]
    with pytest.raises(ValueError, match="nas-bench-macro:acc_mnist: no such column"):
        accuracy_evaluator("table:acc_mnist", MACRO)
    with pytest.raises(ValueError, match="ofa-resnet50 has no packaged accuracy table"):
        accuracy_evaluator("table", get_space("ofa-resnet50"))


def test_space_commands_and_a_search_work_on_nas_bench_macro(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["space", "list"]) == 0
    assert "nas-bench-macro" in capsys.readouterr().out
    assert main(["space", "sample", "--space", "nas-bench-macro", "-n", "3", "--json"]) == 0
    assert len(json.load(io.StringIO(capsys.readouterr().out))) == 3
    out = tmp_path / "run"
    assert main(["search", "--space", "nas-bench-macro", "--objectives", "flops,accuracy", "--device", "none",
                 "--algo", "random", "--evals", "20", "--population", "10", "--quiet", "--db", str(tmp_path / "s.db"),
                 "--out", str(out)]) == 0
    summary = json.loads((out / "run.json").read_text())
    assert summary["evaluations"] == 20 and summary["config"]["accuracy"] == "nas-bench-macro"


FBNET = get_space("fbnet")


def test_fbnet_worked_example_decodes_as_the_readme_says() -> None:
    x = FBNET.from_string("7,8,1,8,4,8,8,8,7,4,1,4,7,3,2,7,3,2,4,2,4,5")
    assert FBNET.decode(x)["layers"][:3] == ["k5_e6", "skip", "k3_e1_g2"]
    graph = FBNET.to_graph(x)
    ops = graph.op_counts()
    assert ops["transpose"] == 3  # k3_e1_g2 at l03 and l11, k5_e1_g2 at l22: one channel shuffle each
    assert graph.nodes[-1].out_shape == (1, 100)
    # l07 and l08 are identities: moving them behind l09 leaves the network unchanged
    assert FBNET.network_key(x)[5:9] == (8, 7, 8, 8)


def test_every_row_of_the_help_fbnet_table_is_an_fbnet_network() -> None:
    from hwnas.controller.data import get_table

    table = get_table("help-fbnet")
    rows = table_rows("help-fbnet")
    assert len(rows) == 5000
    keys = {FBNET.network_key(FBNET.from_string(table.key_of(row))) for row in rows}
    assert len(keys) == 5000  # no two rows are one network


def test_fbnet_exports_onnx_that_runs_and_imports_back_to_the_same_graph() -> None:
    from hwnas.controller.graph.onnx_import import from_onnx
    from hwnas.controller.graph.torch_module import to_torch

    graph = FBNET.to_graph(FBNET.from_string(",".join(["1"] * 11 + ["5"] * 11)))
    data = to_onnx_bytes(graph)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    (out,) = session.run(None, {session.get_inputs()[0].name: x})
    assert out.shape == (1, 100)
    assert from_onnx(data).arch_id == graph.arch_id  # the channel shuffle survives the round trip
    import torch

    assert to_torch(graph)(torch.from_numpy(x)).shape == (1, 100)


# The FLOPs baseline builds every row's network (the test split is the rest of the table): FBNet's 5,000
# take ~25 s, so FLOPs are benched on NAS-Bench-Macro's table only.
@pytest.mark.parametrize(("space", "target", "better", "kinds"), [
    ("nas-bench-macro", "mean_acc", "higher", "ridge,flops"), ("fbnet", "lat_ms_raspi4", "lower", "ridge")])
def test_predictor_bench_runs_on_each_familys_packaged_table(space: str, target: str, better: str, kinds: str,
                                                             capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert main(["predictor", "bench", "--space", space, "--target", target, "--kinds", kinds, "--seeds", "1",
                 "--train", "200", "--valid", "50", "--quiet", "--json", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    assert f"NDCG@10 with {better} {target} better" in out
    metrics = {r["kind"]: r for r in json.loads((tmp_path / "m.json").read_text())}
    assert set(metrics) == set(kinds.split(","))
    assert metrics["ridge"]["spearman"] > 0.9 and 0 < metrics["ridge"]["ndcg_at_10"] <= 1
    if "flops" in metrics:
        assert {"mae", "kendall_tau", "ndcg_at_10"} <= set(metrics["flops"])
    if space == "nas-bench-macro":  # 2,592 keys copy another key's network: benched once, or the split leaks
        assert "3969 nas-bench-macro architectures" in out and "2592 copies of a network left out" in out


def test_a_table_row_that_is_not_an_architecture_names_its_line(tmp_path: Path, capsys: pytest.CaptureFixture
                                                                ) -> None:
    bad = tmp_path / "macro.csv"
    bad.write_text("arch,mean_acc\n02012100,89.2\n0201210,88.0\n")
    assert main(["predictor", "bench", "--space", "nas-bench-macro", "--data", str(bad), "--target", "mean_acc",
                 "--kinds", "ridge", "--quiet"]) == 2
    assert "macro.csv, line 3: not a nas-bench-macro architecture" in capsys.readouterr().err
    assert main(["predictor", "bench", "--space", "nas-bench-macro", "--target", "acc_mnist", "--quiet"]) == 2
    assert "has no column 'acc_mnist'" in capsys.readouterr().err
    assert main(["predictor", "bench", "--space", "ofa-resnet50", "--target", "x", "--quiet"]) == 2
    assert "ofa-resnet50 has no packaged table of labels; give --data FILE" in capsys.readouterr().err


def test_ndcg_rewards_a_predictor_whose_top_ten_are_the_best() -> None:
    from hwnas.predictors.metrics import ndcg_at

    true = np.arange(100, dtype=float)
    assert ndcg_at(true, true, 10, higher_is_better=True) == pytest.approx(1.0)
    assert ndcg_at(-true, true, 10, higher_is_better=True) < 0.2  # ranks the worst first
    assert ndcg_at(true, true, 10, higher_is_better=False) == pytest.approx(1.0)  # a perfect ranking either way
    assert ndcg_at(true[::-1].copy(), true, 10, higher_is_better=False) < 0.2  # a latency: the smallest are best


def test_ofa_mbv3_subnets_of_the_dynast_table_have_its_params_and_macs() -> None:
    from hwnas.controller.data import get_table

    space, table = get_space("ofa-mbv3"), get_table("ofa-mbv3-accuracy")
    rows = table_rows("ofa-mbv3-accuracy")
    assert len(rows) == 2162
    for row in rows[::20]:  # all 2,162 match (checked once by hand); every 20th keeps the suite short
        graph = space.to_graph(space.from_string(table.key_of(row)))
        assert (graph.params(), graph.macs()) == (int(row["params"]), int(row["macs"])), row["subnet_id"]
    first = space.candidate(space.from_string(table.key_of(rows[0])))
    assert first.arch.startswith("d2:k5e4,k7e3|d3:")  # the README's worked example, subnet 0
    assert accuracy_evaluator("table", space)([first]) == [75.462]
    small = get_space("ofa-mbv3", resolution=160)
    with pytest.raises(ValueError, match="accuracies at 224 px, not at 160 px"):
        accuracy_evaluator("table", small)([small.candidate(first.encoding)])


def test_nb101_cells_of_the_naslib_table_hash_and_count_as_nb101_does() -> None:
    from hwnas.controller.data import get_table
    from hwnas.controller.spaces.nb101 import cell_hash

    space, table = get_space("nb101"), get_table("naslib-nb101")
    rows = table_rows("naslib-nb101")
    networks = set()
    for row in rows:
        x = space.from_string(table.key_of(row))
        matrix, ops = space.pruned(x)
        assert cell_hash(matrix, ops) == row["nb101_hash"]  # NB-101's own isomorphism-invariant hash
        assert (len(ops), int(matrix.sum())) == (int(row["pruned_vertices"]), int(row["pruned_edges"]))
        networks.add(space.network_key(x))
        if int(row["row"]) % 25 == 0:  # params equal NASLib's model for every row; a sample keeps this short
            assert space.to_graph(x).params() == round(float(row["params"]) * 1e6), row["row"]
    assert len(networks) == 292  # 500 rows, 292 networks (the README's count)
    first = space.to_graph(space.from_string(table.key_of(rows[0])))
    assert first.params() == 4_095_778  # the README's worked example
    session = ort.InferenceSession(to_onnx_bytes(first), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: np.zeros((1, 3, 32, 32), np.float32)})
    assert out.shape == (1, 10)


def test_nb101_bad_cells_are_named() -> None:
    space = get_space("nb101")
    with pytest.raises(ValueError, match="7 rows of 7 bits"):
        space.from_string("0111101/0000011,input|output")
    with pytest.raises(ValueError, match="upper-triangular"):
        space.from_string("0000000/1000000/0000000/0000000/0000000/0000000/0000000,"
                          "input|conv3x3-bn-relu|conv3x3-bn-relu|conv3x3-bn-relu|conv3x3-bn-relu|conv3x3-bn-relu|output")
    unconnected = space.from_string("0100000/0000000/0000000/0000000/0000000/0000000/0000000,"
                                    "input|conv3x3-bn-relu|conv3x3-bn-relu|conv3x3-bn-relu|conv3x3-bn-relu|"
                                    "conv3x3-bn-relu|output")
    assert not space.has_network(unconnected)
    with pytest.raises(ValueError, match="no input->output path"):
        space.to_graph(unconnected)


def test_graph_predictors_train_where_asked(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    import torch

    base = ["predictor", "bench", "--space", "nas-bench-macro", "--target", "mean_acc", "--kinds", "ridge,kgnn",
            "--seeds", "1", "--train", "40", "--valid", "10", "--quiet"]
    if not torch.cuda.is_available():  # this machine: asking for CUDA fails before anything trains
        assert main([*base, "--torch-device", "cuda"]) == 2
        assert "--torch-device cuda: torch sees no CUDA device here" in capsys.readouterr().err
    assert main(["predictor", "bench", "--space", "nas-bench-macro", "--target", "mean_acc", "--kinds", "ridge",
                 "--torch-device", "cuda", "--seeds", "1", "--train", "40", "--valid", "10", "--quiet"]) == 0
    capsys.readouterr()  # ridge trains on no torch device: the flag does not matter to it


def test_space_sample_gives_only_networks(capsys: pytest.CaptureFixture) -> None:
    """A quarter of random NB-101 encodings are no network (no input->output path, or > 9 edges): sample,
    export and latbench build (all through catalog.sample) must not hand them on."""
    assert main(["space", "sample", "--space", "nb101", "-n", "40", "--seed", "3", "--json"]) == 0
    assert len(json.load(io.StringIO(capsys.readouterr().out))) == 40
