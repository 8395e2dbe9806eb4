"""`hwnas space ...` and `hwnas graph import` from the command line."""

import csv
import json
from pathlib import Path

import onnxruntime as ort

from hwnas.controller.cli.main import main
from hwnas.controller.graph import ComputationGraph

from .reference_models import EDSR, export_onnx, mobilenet_v3_large


def test_space_list_names_every_space(capsys) -> None:
    assert main(["space", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("nb201", "ofa-mbv3", "ofa-resnet50"):
        assert name in out
    assert "1.56e+04" in out and "2.18e+19" in out


def test_space_sample_is_reproducible_by_seed(capsys) -> None:
    assert main(["space", "sample", "--space", "ofa-resnet50", "-n", "3", "--seed", "5", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["space", "sample", "--space", "ofa-resnet50", "-n", "3", "--seed", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert len({row["arch_id"] for row in first}) == 3


def test_space_show_reads_strings_encodings_and_indices(capsys) -> None:
    arch = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
    assert main(["space", "show", arch, "--json"]) == 0
    by_string = json.loads(capsys.readouterr().out)
    assert by_string["nb201_index"] == 1 and by_string["eagle_vector"] == [3, 3, 4, 1, 3, 1]
    assert main(["space", "show", "1", "--space", "nb201", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["arch_id"] == by_string["arch_id"]
    assert main(["space", "show", "3,3,4,1,3,1", "--space", "nb201", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["arch"] == arch


def test_space_show_errors_say_why_each_space_refused(capsys) -> None:
    assert main(["space", "show", "d2:k9e4"]) == 2
    err = capsys.readouterr().err
    assert "cannot read 'd2:k9e4'" in err and "ofa-mbv3:" in err and "nb201:" in err
    assert main(["space", "sample", "--space", "darts", "-n", "2"]) == 2
    assert "unknown search space 'darts'" in capsys.readouterr().err
    assert main(["space", "show", "0,0,0,0,0,7", "--space", "nb201"]) == 2
    assert "variable 5 (edge 3<-2) must be in [0, 4], got 7" in capsys.readouterr().err


def test_space_export_writes_runnable_onnx_cg_json_and_an_index(tmp_path: Path, capsys) -> None:
    out = tmp_path / "export"
    assert main(["space", "export", "--space", "ofa-mbv3", "-n", "3", "--seed", "1", "--resolution", "96",
                 "--out", str(out), "--quiet"]) == 0
    rows = list(csv.DictReader((out / "index.csv").open()))
    assert len(rows) == 3 and set(rows[0]) >= {"arch_id", "macs", "params", "onnx", "cg"}
    for row in rows:
        graph = ComputationGraph.from_json((out / row["cg"]).read_text())
        assert graph.arch_id == row["arch_id"] and graph.macs() == int(row["macs"])
        session = ort.InferenceSession(str(out / row["onnx"]), providers=["CPUExecutionProvider"])
        assert session.get_inputs()[0].shape == [1, 3, 96, 96]


def test_graph_import_prints_counts_and_writes_the_cg(tmp_path: Path, capsys) -> None:
    model = tmp_path / "mbv3.onnx"
    model.write_bytes(export_onnx(mobilenet_v3_large(), (1, 3, 224, 224)))
    out = tmp_path / "cg.json"
    assert main(["graph", "import", str(model), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "0.217 GMACs" in text and "5.483 M params" in text and "hardswish" in text
    assert ComputationGraph.from_json(out.read_text()).params() == 5_483_032


def test_graph_import_asks_for_a_shape_when_the_model_is_dynamic(tmp_path: Path, capsys) -> None:
    model = tmp_path / "edsr.onnx"
    model.write_bytes(export_onnx(EDSR(blocks=1, channels=8), (1, 3, 24, 24), dynamic_batch=True))
    assert main(["graph", "import", str(model)]) == 2
    assert "input 'x' has dynamic dims" in capsys.readouterr().err
    assert main(["graph", "import", str(model), "--input-shape", "2,3,24,24", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["input_shape"] == [2, 3, 24, 24]
    assert main(["graph", "import", str(tmp_path / "nope.onnx")]) == 2
    assert "no such model file" in capsys.readouterr().err


def test_asking_for_more_networks_than_a_space_has_ends_at_once_and_says_so(capsys) -> None:
    """`--sample 16000` on nb201 (15,284 networks) drew at random for minutes and said nothing."""
    import time

    from hwnas.controller.cli.common import sampled
    from hwnas.controller.spaces import get_space

    space = get_space("nb201")
    t0 = time.perf_counter()
    archs = sampled(space, 16000, seed=1)
    assert time.perf_counter() - t0 < 20  # listing and shuffling, not a coupon collector (109 s before)
    assert len(archs) == len({tuple(x) for x in archs}) == 15284 and all(space.has_network(x) for x in archs)
    assert "nb201 has only 15,284 distinct networks (of 15,625 encodings); sampling all 15,284 of them instead " \
           "of 16,000" in capsys.readouterr().err
    assert sampled(space, 9000, seed=2)[:5] == sampled(space, 9000, seed=2)[:5]  # still seeded
    assert capsys.readouterr().err == ""
