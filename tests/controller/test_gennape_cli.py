"""GENNAPE from the command line and inside the searches: a folder of ONNX files this project never produced,
``hwnas search --accuracy gennape:DIR`` and ``hwnas autogo run`` with GENNAPE in place of PSC."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hwnas.controller.cli.main import main
from hwnas.predictors import load


def _cnn(width: int, depth: int, kernel: int) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
    for _ in range(depth):
        layers += [nn.Conv2d(width, width, kernel, padding=kernel // 2), nn.BatchNorm2d(width), nn.ReLU()]
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10)).eval()


@pytest.fixture(scope="module")
def onnx_family(tmp_path_factory) -> Path:
    """Twelve torch CNNs exported by torch.onnx (not by hwnas), with made-up accuracies rising with depth."""
    folder = tmp_path_factory.mktemp("family")
    rows = []
    for k, (width, depth, kernel) in enumerate((w, d, c) for w in (8, 16) for d in (1, 2, 3) for c in (1, 3)):
        torch.onnx.export(_cnn(width, depth, kernel), (torch.zeros(1, 3, 32, 32),), str(folder / f"net{k}.onnx"),
                          dynamo=False)
        rows.append((f"net{k}.onnx", 70 + 5 * depth + width / 8 + kernel / 3))
    with open(folder / "labels.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([("file", "accuracy"), *rows])
    return folder


def test_gennape_pretrains_and_evaluates_on_a_folder_of_foreign_onnx(onnx_family: Path, small_gennape: Path,
                                                                     tmp_path: Path, capsys) -> None:
    assert main(["predictor", "gennape", "eval", "--model", str(small_gennape), "--family", str(onnx_family),
                 "--finetune", "6", "--seeds", "1", "--json", str(tmp_path / "m.json"), "--quiet"]) == 0
    out = capsys.readouterr().out
    for label in ("GENNAPE", "CL+FCM+T", "CL+Pairwise+FCM", "k-GNN", "FLOPs", "FT6 SRCC", "MAE %"):
        assert label in out
    assert main(["predictor", "gennape", "finetune", "--model", str(small_gennape), "--family", str(onnx_family),
                 "--samples", "0", "--out", str(tmp_path / "tuned")]) == 0
    tuned = load(tmp_path / "tuned")
    assert onnx_family.name in tuned.card.domain["families"] and "fine-tuned on 12" in tuned.card.notes
    assert main(["predictor", "gennape", "pretrain", "--family", str(onnx_family), "--cl-epochs", "1", "--epochs",
                 "2", "--out", str(tmp_path / "own"), "--quiet"]) == 0
    assert load(tmp_path / "own").card.domain["families"] == [onnx_family.name]


def _bad_family(tmp_path: Path, onnx_family: Path, labels: str, extra: bytes | None = None) -> Path:
    folder = tmp_path / "bad"
    folder.mkdir()
    for name in ("net0.onnx", "net1.onnx"):
        (folder / name).write_bytes((onnx_family / name).read_bytes())
    if extra is not None:
        (folder / "odd.onnx").write_bytes(extra)
    (folder / "labels.csv").write_text(labels)
    return folder


def _einsum_model() -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Einsum", ["x", "x"], ["y"], equation="nchw,nchw->nc")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@pytest.mark.parametrize(("labels", "extra", "message"), [
    ("file,accuracy\nnet0.onnx,91.5\nnet1.onnx,ninety\n", None, "line 3: accuracy 'ninety' is not a number"),
    ("file,accuracy\nnet0.onnx,91.5\nnet1.onnx,191\n", None, "line 3: accuracy 191.0 is not a percentage"),
    ("file,acc\nnet0.onnx,91.5\n", None, "missing ['accuracy']"),
    ("file,accuracy\nnet0.onnx,91.5\nnet9.onnx,90\n", None, "not in"),
    ("file,accuracy\nnet0.onnx,91.5\nnet1.onnx,90\nodd.onnx,80\n", "einsum", "cannot read these ONNX ops: Einsum"),
])
def test_a_bad_folder_family_names_the_line_file_or_op(onnx_family: Path, small_gennape: Path, tmp_path: Path,
                                                       capsys, labels: str, extra: str | None, message: str) -> None:
    folder = _bad_family(tmp_path, onnx_family, labels, _einsum_model() if extra else None)
    assert main(["predictor", "gennape", "eval", "--model", str(small_gennape), "--family", str(folder),
                 "--finetune", "0", "--quiet"]) == 2
    assert message in capsys.readouterr().err


def test_gennape_refuses_what_is_not_a_family_or_not_gennape(small_gennape: Path, tmp_path: Path, capsys) -> None:
    assert main(["predictor", "gennape", "eval", "--model", str(small_gennape), "--family", "nowhere"]) == 2
    assert "not a folder, a packaged accuracy table" in capsys.readouterr().err
    assert main(["predictor", "gennape", "eval", "--model", str(small_gennape), "--family", "fbnet"]) == 2
    assert "has no packaged accuracy table" in capsys.readouterr().err
    from hwnas.predictors import Samples, get_predictor

    get_predictor("flops").fit(Samples(flops=np.arange(1.0, 5.0), y=np.arange(4.0))).save(tmp_path / "flops")
    assert main(["predictor", "gennape", "eval", "--model", str(tmp_path / "flops"), "--family", "nb201"]) == 2
    assert "not GENNAPE" in capsys.readouterr().err


def test_search_takes_gennape_as_its_accuracy_predictor(small_gennape: Path, tmp_path: Path) -> None:
    from hwnas.controller.learning.families import graph_samples
    from hwnas.controller.spaces import get_space

    assert main(["search", "--objectives", "flops,accuracy", "--accuracy", f"gennape:{small_gennape}", "--device",
                 "none", "--algo", "random", "--evals", "6", "--db", str(tmp_path / "s.db"), "--out",
                 str(tmp_path / "out"), "--quiet"]) == 0
    with open(tmp_path / "out" / "measured.csv", newline="") as handle:
        measured = list(csv.DictReader(handle))
    space = get_space("nb201")
    graphs = [space.to_graph([int(v) for v in r["encoding"].split()]) for r in measured]
    expected = load(small_gennape).predict(graph_samples(graphs, "nb201"))
    assert [float(r["accuracy_pct"]) for r in measured] == pytest.approx(expected.tolist(), abs=1e-3)


def test_search_refuses_a_gennape_path_holding_another_predictor(tmp_path: Path, capsys) -> None:
    from hwnas.predictors import Samples, get_predictor

    get_predictor("flops").fit(Samples(flops=np.arange(1.0, 5.0), y=np.arange(4.0))).save(tmp_path / "flops")
    assert main(["search", "--objectives", "flops,accuracy", "--accuracy", f"gennape:{tmp_path / 'flops'}",
                 "--device", "none", "--evals", "4", "--db", str(tmp_path / "s.db"), "--quiet"]) == 2
    assert "holds a 'flops' predictor, not 'gennape'" in capsys.readouterr().err


def test_autogo_runs_with_gennape_in_place_of_psc(small_gennape: Path, tmp_path: Path) -> None:
    assert main(["autogo", "build-db", "--out", str(tmp_path / "seg"), "--samples-per-space", "4", "--vocab-size",
                 "300", "--spaces", "nb201", "--quiet"]) == 0
    out = tmp_path / "run"
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    assert main(["autogo", "run", "--space", "nb201", "--arch", arch, "--metric", "flops", "--iterations", "1",
                 "--parents", "1", "--candidates", "8", "--segments", str(tmp_path / "seg"), "--predictor",
                 str(small_gennape), "--db", str(tmp_path / "s.db"), "--out", str(out), "--quiet"]) == 0
    with open(out / "all.csv", newline="") as handle:
        everything = list(csv.DictReader(handle))
    assert len(everything) > 1
    assert all(0 <= float(r["predicted_accuracy"]) <= 100 for r in everything)
    assert len({r["predicted_accuracy"] for r in everything}) > 1  # it tells the children apart


def test_linas_ranks_by_gennape_itself_and_each_network_is_predicted_once(small_gennape: Path, tmp_path: Path,
                                                                          monkeypatch) -> None:
    from hwnas.controller.search.objectives import PredictorAccuracy

    calls: list[int] = []
    original = PredictorAccuracy.predict_encodings

    def counting(self, encodings):
        calls.append(len(encodings))
        return original(self, encodings)

    monkeypatch.setattr(PredictorAccuracy, "predict_encodings", counting)
    assert main(["search", "--objectives", "flops,accuracy", "--accuracy", f"gennape:{small_gennape}", "--device",
                 "none", "--algo", "linas", "--evals", "12", "--population", "6", "--inner-evals", "60",
                 "--db", str(tmp_path / "s.db"), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    # only the inner search calls predict_encodings (measured candidates go through __call__), for more
    # architectures than the 12 evaluated: it ranked by GENNAPE, not by a ridge fitted to its outputs
    assert calls and sum(calls) > 12


def test_predictor_accuracy_builds_each_networks_graph_once(small_gennape: Path, monkeypatch) -> None:
    from hwnas.controller.search.objectives import predictor_accuracy
    from hwnas.controller.spaces import get_space

    space = get_space("nb201")
    accuracy = predictor_accuracy(str(small_gennape), space, kind="gennape")
    cells = [[1, 2, 3, 1, 2, 3], [3, 3, 3, 3, 3, 3], [1, 2, 3, 1, 2, 3]]
    built: list = []
    to_graph = space.to_graph
    monkeypatch.setattr(space, "to_graph", lambda x: built.append(x) or to_graph(x))
    first = accuracy.predict_encodings(cells)
    again = accuracy.predict_encodings(cells)
    assert np.array_equal(first, again) and first[0] == first[2]
    assert len(built) == 2  # two distinct networks, each built and predicted once


def test_gennape_evaluates_a_folder_of_corpus_cnns_and_transformers(small_gennape: Path, tmp_path: Path,
                                                                    capsys) -> None:
    """#38: networks users bring, transformers among them, exported by torch and read through the graph IR;
    labels are the published ImageNet top-1 of each architecture (torchvision's and timm's cards)."""
    from hwnas.controller.corpus import registry

    published = {"squeezenet": 58.09, "shufflenet_v2": 69.36, "mobilenet_v2": 71.88, "vit_tiny": 72.2,
                 "mobilevit_xs": 74.8}
    folder = tmp_path / "imagenet"
    folder.mkdir()
    for name in published:
        (folder / f"{name}.onnx").write_bytes(registry.export(name, 17))
    with open(folder / "labels.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([("file", "accuracy"), *((f"{n}.onnx", a) for n, a in published.items())])
    assert main(["predictor", "gennape", "eval", "--model", str(small_gennape), "--family", str(folder),
                 "--finetune", "0", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "GENNAPE" in out and "5 networks" in out
