"""NB-201 cell graphs as BRP-NAS builds them, and `hwnas predictor bench|train` from tables and the store."""

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest

from hwnas.controller import data as packaged_tables
from hwnas.controller.cli.main import main
from hwnas.controller.errors import SettingError
from hwnas.controller.learning.data import (
    FULL_NODE_TYPES,
    GLOBAL,
    NODE_TYPES,
    OUTPUT,
    nb201_cell_graph,
    nb201_full_cell_graph,
    nb201_samples,
)
from hwnas.controller.learning.jobs import artifact_dir, load_for_device, samples_from_store, transfer_sources
from hwnas.controller.spaces.nb201 import parse_arch_str
from hwnas.controller.store import Store
from hwnas.controller.store.importers import import_nb201_table
from hwnas.predictors.metrics import evaluate

TABLE = Path(packaged_tables.__file__).parent / "nb201" / "nb201_latency_accuracy.csv.gz"
TARGET = "lat_ms_latbench_desktop_cpu_i7_7820x"


def graph(arch: str):
    return nb201_cell_graph(parse_arch_str(arch))


def feeds(adjacency: np.ndarray) -> set[tuple[int, int]]:
    """(from, to) edges other than self loops and the global node's inputs."""
    return {(int(j), int(i)) for i, j in zip(*np.nonzero(adjacency), strict=True) if i != j and i != GLOBAL}


def test_an_all_conv_cell_keeps_every_op_node_and_its_data_flow() -> None:
    adjacency, features = graph("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|"
                                "nor_conv_3x3~2|")
    assert feeds(adjacency) == {(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 6), (3, 6), (4, OUTPUT), (5, OUTPUT),
                                (6, OUTPUT)}
    assert np.all(np.diag(adjacency) == 1) and np.all(adjacency[GLOBAL] == 1)
    assert features[1:7, NODE_TYPES.index("nor_conv_3x3")].tolist() == [1] * 6
    assert features.sum(axis=1).tolist() == [1] * 9


def test_skips_are_bypassed_and_nones_and_dangling_ops_detached() -> None:
    adjacency, features = graph("|skip_connect~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_1x1~2|")
    assert feeds(adjacency) == {(0, 3), (3, 6), (6, OUTPUT)}  # input -skip-> conv3x3 -> conv1x1 -> output
    assert features[[1, 2, 4, 5]].sum() == 0  # skip and none nodes: typeless
    adjacency, features = graph("|nor_conv_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|")
    assert feeds(adjacency) == {(0, 4), (4, OUTPUT)}  # the conv into node 1 reaches no output: dropped
    assert features[1].sum() == 0 and features[4, NODE_TYPES.index("nor_conv_1x1")] == 1


def test_the_full_cell_graph_keeps_every_edge_op_as_the_reference_code_runs_it() -> None:
    arch = "|skip_connect~0|+|none~0|nor_conv_3x3~1|+|none~0|none~1|nor_conv_1x1~2|"
    adjacency, features = nb201_full_cell_graph(parse_arch_str(arch))
    all_conv, _ = graph("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|"
                        "nor_conv_3x3~2|")
    assert feeds(adjacency) == feeds(all_conv)  # the data flow of every edge, whatever its op
    assert [FULL_NODE_TYPES[i] for i in features[1:7].argmax(axis=1)] == [
        "skip_connect", "none", "nor_conv_3x3", "none", "none", "nor_conv_1x1"]
    assert features.sum(axis=1).tolist() == [1] * 9
    with pytest.raises(ValueError, match="cell graph must be one of pruned, full"):
        nb201_samples([parse_arch_str(arch)], cell_graph="unpruned")
    # the whole CG the GNNs read follows: with "full", the reference network, its dead convs included
    dead = parse_arch_str("|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    pruned, full = (nb201_samples([dead], graphs=True, cell_graph=kind).graphs[0] for kind in ("pruned", "full"))
    assert len(full[0]) > len(pruned[0]) and full[1].shape[1] > pruned[1].shape[1]


def small_table(tmp_path: Path, rows: int = 400) -> Path:
    with gzip.open(TABLE, "rt") as handle:
        reader = csv.DictReader(handle)
        picked = [row for _, row in zip(range(rows), reader, strict=False)]
    path = tmp_path / "device.csv"
    with path.open("w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=["arch_str", "my_device_ms"])
        writer.writeheader()
        writer.writerows({"arch_str": r["arch_str"], "my_device_ms": r[TARGET]} for r in picked)
    return path


def test_bench_prints_the_table_for_any_csv_with_arch_strings(tmp_path: Path, capsys) -> None:
    data = small_table(tmp_path)
    code = main(["predictor", "bench", "--data", str(data), "--target", "my_device_ms", "--kinds", "ridge,svr,gcn",
                 "--seeds", "2", "--train", "150", "--valid", "30", "--gcn-epochs", "2", "--quiet",
                 "--json", str(tmp_path / "m.json"), "--plot", str(tmp_path / "scatter.png")])
    out = capsys.readouterr().out
    assert code == 0
    assert "without a network" in out and "150 train / 30 validation" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.split()}
    assert {"ridge", "svr", "gcn"} <= set(lines) and "BRP ±1%" in out and "Kendall" in out
    assert len(__import__("json").loads((tmp_path / "m.json").read_text())) == 6
    assert (tmp_path / "scatter.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_shows_each_epoch_of_a_gnn_fit_on_its_bar(tmp_path: Path, capsys) -> None:
    """A GNN fit takes minutes: the bar says which epoch it is at, not just which fit."""
    data = small_table(tmp_path, 100)
    assert main(["predictor", "bench", "--data", str(data), "--target", "my_device_ms", "--kinds", "kgnn",
                 "--seeds", "1", "--train", "60", "--valid", "20", "--set", "epochs=2", "--set", "patience=2",
                 "--set", "hidden=8"]) == 0
    err = capsys.readouterr().err
    assert "epoch 1/2, validation loss" in err and "epoch 2/2, validation loss" in err and "kgnn seed 0 done" in err


def test_bench_runs_every_whole_cg_gnn_with_settings_from_the_command_line(tmp_path: Path, capsys) -> None:
    """gin, gatv2 and gcn-cg read whole CGs too: bench built them only when kgnn was asked for."""
    data = small_table(tmp_path, 120)
    code = main(["predictor", "bench", "--data", str(data), "--target", "my_device_ms", "--kinds", "gin,gatv2,gcn-cg",
                 "--seeds", "1", "--train", "60", "--valid", "20", "--quiet", "--set", "epochs=2",
                 "--set", "gcn-cg.readout=additive", "--set", "hidden=8"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert {"gin", "gatv2", "gcn-cg"} <= {line.split()[0] for line in out.splitlines() if line.split()}
    assert main(["predictor", "bench", "--data", str(data), "--target", "my_device_ms", "--kinds", "gin",
                 "--quiet", "--set", "gin.readout=mean"]) == 2
    assert "readout must be one of pool, additive" in capsys.readouterr().err
    assert main(["predictor", "bench", "--data", str(data), "--target", "my_device_ms", "--kinds", "ridge",
                 "--quiet", "--set", "readout"]) == 2
    assert "--set 'readout': write KEY=VALUE or KIND.KEY=VALUE" in capsys.readouterr().err
    assert main(["predictor", "bench", "--data", str(data), "--target", "my_device_ms", "--kinds", "gin",
                 "--quiet", "--set", "gin.hidden=abc"]) == 2  # was a TypeError traceback from torch
    assert "gin's hidden must be int like its default 128, not 'abc'" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--target", "no_such_column"], "has no column 'no_such_column'"),
    (["--target", TARGET, "--kinds", "ridge,xgb"], "unknown predictor 'xgb'"),
    (["--target", TARGET, "--data", "/nonexistent.csv"], "no such file"),
    (["--target", TARGET, "--seeds", "0"], "--seeds must be >= 1"),
])
def test_bench_refuses_bad_input_naming_it(args, message, capsys) -> None:
    assert main(["predictor", "bench", "--quiet", *args]) == 2
    assert message in capsys.readouterr().err


def test_train_from_the_store_saves_by_device_key_and_loads_back(tmp_path: Path, capsys) -> None:
    db = tmp_path / "lab.db"
    with Store(db) as store:
        import_nb201_table(store, small_table(tmp_path, 260), "my_device_ms", "i7-ort")
    assert main(["predictor", "train", "--db", str(db), "--device", "i7-ort", "--kind", "svr"]) == 0
    assert "saved svr predictor for i7-ort" in capsys.readouterr().out
    predictor = load_for_device(db, "i7-ort", "svr")
    assert predictor.card.device_key == "i7-ort" and predictor.card.n_train > 180
    assert 0 <= predictor.card.metrics["brpnas_within_10pct"] <= 1
    assert (artifact_dir(db, "i7-ort", "svr") / "weights.safetensors").exists()
    assert main(["predictor", "train", "--db", str(db), "--device", "pixel3", "--kind", "svr"]) == 2
    assert "no measurements for device key 'pixel3'" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError, match="hwnas predictor train"):
        load_for_device(db, "i7-ort", "gcn")
    assert main(["predictor", "train", "--db", str(db), "--device", "i7-ort", "--kind", "gcn", "--set", "epochs=2",
                 "--set", "hidden=16"]) == 0  # the default kind's fit takes minutes: its bar counts the epochs
    assert "gcn for i7-ort" in (err := capsys.readouterr().err) and "2/2" in err and "validation loss" in err
    assert load_for_device(db, "i7-ort", "gcn").config["epochs"] == 2


def test_a_new_device_with_few_measurements_trains_by_transfer_from_other_keys(tmp_path: Path, capsys) -> None:
    db = tmp_path / "lab.db"
    with Store(db) as store:  # the same 400 cells as two devices; the new one has measured 30 of them
        import_nb201_table(store, small_table(tmp_path, 400), "my_device_ms", "old-i7")
        import_nb201_table(store, small_table(tmp_path, 30), "my_device_ms", "new-i7")
    base = ["predictor", "train", "--db", str(db), "--device", "new-i7"]
    assert main([*base, "--kind", "sources"]) == 0  # by default: the packaged NB-201 devices and the other keys
    assert "transferred from the packaged nb201 devices (8) and old-i7" in \
        load_for_device(db, "new-i7", "sources").card.notes
    with Store(db) as store, pytest.raises(SettingError, match="sources are needed: no other device key measured"):
        transfer_sources(store, "nas-bench-macro", "new-i7")  # a space with no packaged device tables
    assert main([*base, "--kind", "ridge", "--sources", "old-i7"]) == 2
    assert "--sources are for a predictor that learns from other devices (kind sources), not ridge" in \
        capsys.readouterr().err
    assert main([*base, "--kind", "sources", "--sources", "nobody"]) == 2
    assert "no measurements for device key 'nobody'" in capsys.readouterr().err
    assert main([*base, "--kind", "sources", "--sources", "old-i7"]) == 0
    predictor = load_for_device(db, "new-i7", "sources")
    assert "transferred from old-i7" in predictor.card.notes
    assert main([*base, "--kind", "ridge"]) == 0
    with Store(db) as store:  # the new key's latencies are the old one's: transfer ranks the 400 cells better
        _, cells = samples_from_store(store, "old-i7")
    transferred, scratch = (evaluate(p.predict(cells), cells.y)["spearman"] for p in
                            (predictor, load_for_device(db, "new-i7", "ridge")))
    assert transferred > scratch + 0.05


def test_transfer_compares_a_warm_started_gcn_with_one_from_scratch(tmp_path: Path, capsys) -> None:
    data = small_table(tmp_path, 300)
    code = main(["predictor", "transfer", "--data", str(data), "--target", "my_device_ms",
                 "--transfer-from", f":{TARGET.replace('latbench_desktop_cpu_i7_7820x', 'pixel3')}",
                 "--samples", "10,40", "--seeds", "1", "--test", "100", "--gcn-epochs", "3", "--pretrain", "150",
                 "--methods", "ridge,sources,gcn,gcn-transfer"])
    out, err = capsys.readouterr()
    assert code == 0
    # 10 training networks leave many test networks outside their domain: said once, not once per batch
    assert err.count("lie outside what it was trained on") == 1 and "prediction batch(es) included" in err, err
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split() and line.split()[0].isdigit()}
    assert set(rows) == {"10", "40"} and all(len(r) == 1 + 4 * 3 for r in rows.values())  # n; 3 metrics of 4
    assert "Spearman sources" in out and "±10% gcn-transfer" in out and "NDCG@10 ridge" in out
    assert main(["predictor", "transfer", "--target", TARGET, "--transfer-from", ":lat_ms_pixel3", "--methods",
                 "ridge,xgb"]) == 2
    assert "unknown transfer method(s) or selection(s) ['xgb']" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["predictor", "transfer", "--target", TARGET, "--transfer-from", "nocolon"])
    assert exit_info.value.code == 2 and "FILE:COLUMN" in capsys.readouterr().err
    assert main(["predictor", "transfer", "--target", TARGET, "--transfer-from", ":lat_ms_nothing"]) == 2
    assert "has no column 'lat_ms_nothing'" in capsys.readouterr().err
    assert main(["predictor", "transfer", "--target", TARGET, "--transfer-from", f":{TARGET}", "--pretrain", "0"]) == 2
    assert "--pretrain must be >= 10" in capsys.readouterr().err


def test_a_card_from_too_few_held_out_points_gives_no_figure(tmp_path: Path, capsys) -> None:
    """12 measurements hold out 2: their Spearman is +-1 by construction, and the card printed 1.000."""
    db = tmp_path / "lab.db"
    with Store(db) as store:
        import_nb201_table(store, small_table(tmp_path, 12), "my_device_ms", "i7-ort")
    assert main(["predictor", "train", "--db", str(db), "--device", "i7-ort", "--kind", "ridge"]) == 0
    out = capsys.readouterr().out
    assert "too few to score the predictor (at least 20" in out and "Spearman" not in out
    card = load_for_device(db, "i7-ort", "ridge").card
    assert "spearman" not in card.metrics and "too few to score" in card.notes


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_bench_reads_this_projects_own_export(tmp_path: Path, capsys, fmt: str) -> None:
    from hwnas.controller.store.export import export

    db = tmp_path / "lab.db"
    with Store(db) as store:
        import_nb201_table(store, small_table(tmp_path, 240), "my_device_ms", "i7-ort")
        import_nb201_table(store, small_table(tmp_path, 240), "my_device_ms", "other")
        export(store, tmp_path / f"lab.{fmt}", fmt)
    bench = ["predictor", "bench", "--data", str(tmp_path / f"lab.{fmt}"), "--target", "latency_ms",
             "--kinds", "ridge", "--seeds", "1", "--train", "150", "--valid", "30", "--quiet"]
    assert main(bench) == 2
    err = capsys.readouterr().err
    assert "--device is needed: " in err and "several device keys ['i7-ort', 'other']" in err
    assert main([*bench, "--device", "i7-ort"]) == 0
    out = capsys.readouterr().out
    assert "150 train / 30 validation" in out and "ridge" in out


def test_bench_refuses_a_table_with_a_negative_latency_naming_its_line(tmp_path: Path, capsys) -> None:
    """`predictor bench --data` took negative latencies and fitted predictors to them."""
    data = small_table(tmp_path, 60)
    lines = data.read_text().splitlines()
    arch, _ = lines[5].rsplit(",", 1)
    lines[5] = f"{arch},-3.5"
    data.write_text("\n".join(lines) + "\n")
    assert main(["predictor", "bench", "--data", str(data), "--target", "my_device_ms", "--kinds", "ridge",
                 "--seeds", "1", "--train", "30", "--valid", "10", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "line 6: my_device_ms -3.5 cannot be measured" in err and "Traceback" not in err, err


def test_a_key_measured_in_several_spaces_trains_on_the_one_it_can_or_the_one_named(tmp_path: Path, capsys) -> None:
    """After `autogo run` or a nas-bench-macro build on pc-ort, `predictor train --device pc-ort` exited 2 with
    "several spaces", although the README's own examples reuse one key that way."""
    from hwnas.controller.data import nb201_table
    from hwnas.controller.spaces import get_space
    from hwnas.controller.spaces.catalog import sample
    from hwnas.controller.store import ArchRecord, Store
    from hwnas.controller.store.importers import _imported, import_nb201_table

    from .test_importers import write_table

    db = tmp_path / "ds.db"

    def add_macro(store: Store, n: int, seed: int) -> None:
        space = get_space("nas-bench-macro")
        graphs = [(x, space.to_graph(x)) for x in sample(space, n, seed)]
        store.add_architectures([ArchRecord(g.arch_id, space.name, space.to_string(x), " ".join(map(str, x)),
                                            g.macs(), g.params(), g.to_json()) for x, g in graphs])
        store.add_records([_imported(g.arch_id, "pc-ort", f"test-{seed}", 1.0 + k, list(g.input_shape))
                           for k, (_, g) in enumerate(graphs)])

    with Store(db) as store:
        import_nb201_table(store, write_table(tmp_path / "t.csv.gz", nb201_table()[:40]), "lat_ms_pixel3", "pc-ort")
        add_macro(store, 5, seed=1)
    assert main(["predictor", "train", "--db", str(db), "--device", "pc-ort", "--kind", "ridge"]) == 0
    assert "saved ridge predictor for pc-ort (nb201 networks)" in capsys.readouterr().out
    with Store(db) as store:
        add_macro(store, 15, seed=2)
    assert main(["predictor", "train", "--db", str(db), "--device", "pc-ort", "--kind", "ridge"]) == 2
    err = capsys.readouterr().err
    # 40 table rows are 36 networks (pruned twins)
    assert "--space is needed: pc-ort measured several spaces, nb201 (36), nas-bench-macro (20)" in err, err
    assert main(["predictor", "train", "--db", str(db), "--device", "pc-ort", "--kind", "ridge",
                 "--space", "nas-bench-macro"]) == 0
    assert "(nas-bench-macro networks)" in capsys.readouterr().out
    assert main(["predictor", "train", "--db", str(db), "--device", "pc-ort", "--kind", "ridge",
                 "--space", "fbnet"]) == 2
    assert "--space 'fbnet' has no measurements on pc-ort" in capsys.readouterr().err


def test_a_long_runs_warnings_are_said_once_each_with_their_count(capsys) -> None:
    import warnings

    from hwnas.controller.cli.common import warnings_summarised
    from hwnas.predictors import OutsideDomainWarning

    with warnings_summarised():
        for _ in range(3):
            warnings.warn("ill-conditioned matrix", RuntimeWarning, stacklevel=1)
        warnings.warn(OutsideDomainWarning("ridge predictor: 5 of 9 architecture(s) lie outside"), stacklevel=1)
    err = capsys.readouterr().err
    assert err.count("RuntimeWarning") == 1 and "note: RuntimeWarning x3 (first: ill-conditioned matrix)" in err
    assert "note: 1 prediction batch(es) included architectures outside" in err
