"""Importing public tables and our own exports; hostile pickles are refused before any code runs."""

import csv
import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwnas.controller.cli.main import main
from hwnas.controller.data import nb201_table
from hwnas.controller.spaces.nb201 import NasBench201
from hwnas.controller.store import Store
from hwnas.controller.store.export import export
from hwnas.controller.store.importers import (
    ImportReport,
    _nb201_records,
    import_eagle_pickle,
    import_hwnas_export,
    import_nb201_table,
)

SPACE = NasBench201()


def write_table(path: Path, rows: list[dict]) -> Path:
    with gzip.open(path, "wt", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_nb201_table_import_keeps_latencies_and_skips_unconnected(tmp_path: Path) -> None:
    rows = nb201_table()[:400]
    table = write_table(tmp_path / "t.csv.gz", rows)
    with Store(tmp_path / "ds.db") as store:
        report = import_nb201_table(store, table, "lat_ms_pixel3", "pixel3-tflite")
        assert report.rows == 400
        unconnected = sum(r["connected"] == "0" for r in rows)
        assert report.skipped.get("unconnected cells", 0) == unconnected
        assert report.added + report.duplicates == 400 - unconnected
        stored = {r["arch"]: r for r in store.measurements("pixel3-tflite")}
        sample = next(r for r in rows if r["connected"] == "1")
        canonical_arch = SPACE.to_string(SPACE.from_string(sample["arch_str"]))
        if canonical_arch in stored:
            assert stored[canonical_arch]["latency_ms"] == pytest.approx(float(sample["lat_ms_pixel3"]))
        first = next(iter(stored.values()))
        assert first["protocol"] == "imported:t.csv.gz:lat_ms_pixel3" and first["count"] is None
        again = import_nb201_table(store, table, "lat_ms_pixel3", "pixel3-tflite")
        assert again.added == 0  # importing twice adds nothing


def test_eagle_pickles_convert_seconds_and_refuse_code(tmp_path: Path, capsys) -> None:
    cells = [x for x in (SPACE.from_index(i) for i in range(60)) if SPACE.is_connected(x)][:40]
    data = {tuple(SPACE.to_eagle_vector(x)): np.float64(0.001 * (k + 1)) for k, x in enumerate(cells)}
    path = tmp_path / "desktop.pkl"
    path.write_bytes(pickle.dumps(data))
    with Store(tmp_path / "ds.db") as store:
        report = import_eagle_pickle(store, path, "i7-7820x-tf")
        assert report.added + report.duplicates == 40
        latencies = sorted(r["latency_ms"] for r in store.measurements())
        assert latencies[0] == pytest.approx(1.0)  # 0.001 s -> 1 ms

    class Exploit:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    hostile = tmp_path / "hostile.pkl"
    hostile.write_bytes(pickle.dumps({(3, 3, 3, 3, 3, 3): Exploit()}))
    assert main(["latbench", "import", str(hostile), "--db", str(tmp_path / "ds2.db"), "--format", "eagle-pickle",
                 "--device", "x"]) == 2
    err = capsys.readouterr().err
    assert "refused to load" in err and ("posix.system" in err or "os.system" in err)
    assert not (tmp_path / "pwned").exists()
    with Store(tmp_path / "ds2.db") as store:
        assert list(store.measurements()) == []


def test_our_own_export_imports_back_identically(tmp_path: Path) -> None:
    rows = nb201_table()[:120]
    with Store(tmp_path / "a.db") as store:
        import_nb201_table(store, write_table(tmp_path / "t.csv.gz", rows), "lat_ms_gold_6226", "gold")
        n = export(store, tmp_path / "a.parquet", "parquet")
        export(store, tmp_path / "a.csv", "csv")
    for name in ("a.parquet", "a.csv"):
        with Store(tmp_path / f"{name}.db") as other:
            report = import_hwnas_export(other, tmp_path / name)
            assert report.added == n and report.duplicates == 0
            export(other, tmp_path / f"{name}.again.parquet", "parquet")
        before = pd.read_parquet(tmp_path / "a.parquet").drop(columns=["recorded_at_unix_s"])
        after = pd.read_parquet(tmp_path / f"{name}.again.parquet").drop(columns=["recorded_at_unix_s"])
        pd.testing.assert_frame_equal(before, after)


def test_import_cli_names_missing_options(tmp_path: Path, capsys) -> None:
    table = write_table(tmp_path / "t.csv.gz", nb201_table()[:5])
    assert main(["latbench", "import", str(table), "--db", str(tmp_path / "x.db"), "--format", "nb201-table",
                 "--device", "d"]) == 2
    assert "--column" in capsys.readouterr().err
    assert main(["latbench", "import", str(table), "--db", str(tmp_path / "x.db"), "--format", "nb201-table",
                 "--device", "d", "--column", "lat_ms_nope"]) == 2
    assert "no column 'lat_ms_nope'" in capsys.readouterr().err
    assert main(["latbench", "import", str(table), "--db", str(tmp_path / "x.db"), "--format", "nb201-table",
                 "--device", "d", "--column", "lat_ms_pixel3"]) == 0
    assert "5 rows read" in capsys.readouterr().out


def test_an_export_missing_columns_or_with_a_bad_row_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    with Store(tmp_path / "a.db") as store:
        import_nb201_table(store, write_table(tmp_path / "t.csv.gz", nb201_table()[:3]), "lat_ms_gold_6226", "gold")
        export(store, tmp_path / "a.csv", "csv")
    frame = pd.read_csv(tmp_path / "a.csv")
    frame.drop(columns=["input_shape_json", "latency_ms"]).to_csv(tmp_path / "short.csv", index=False)
    db = str(tmp_path / "b.db")
    assert main(["latbench", "import", str(tmp_path / "short.csv"), "--db", db, "--format", "hwnas"]) == 2
    err = capsys.readouterr().err
    assert "lacks the column(s) ['input_shape_json', 'latency_ms']" in err and "Traceback" not in err
    frame["batch_size"] = frame["batch_size"].astype(object)
    frame.loc[1, "batch_size"] = "two"
    frame.to_csv(tmp_path / "bad_row.csv", index=False)
    assert main(["latbench", "import", str(tmp_path / "bad_row.csv"), "--db", db, "--format", "hwnas"]) == 2
    assert "row 3: ValueError" in capsys.readouterr().err
    with Store(db) as store:
        assert list(store.measurements()) == []  # nothing half-imported


def test_a_pickle_calling_an_allowed_class_with_bad_arguments_is_refused(tmp_path: Path, capsys) -> None:
    class BadDtype:
        def __reduce__(self):
            return (np.dtype, ("no such dtype",))

    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps({(3, 3, 3, 3, 3, 3): BadDtype()}))
    assert main(["latbench", "import", str(path), "--db", str(tmp_path / "x.db"), "--format", "eagle-pickle",
                 "--device", "x"]) == 2
    err = capsys.readouterr().err
    assert "is not a measurement pickle: TypeError" in err and "Traceback" not in err


def test_an_export_of_a_space_at_another_resolution_imports_back(tmp_path: Path) -> None:
    """The input shape of an exported row says how to rebuild its network, for every space alike."""
    space = NasBench201(resolution=16)
    x = space.from_index(123)
    with Store(tmp_path / "a.db") as store:
        _nb201_records(store, space, [(x, 2.5)], "gold", "t", ImportReport())
        export(store, tmp_path / "a.csv", "csv")
    with Store(tmp_path / "b.db") as other:
        report = import_hwnas_export(other, tmp_path / "a.csv")
        assert report.added == 1
        [record] = other.measurements()
        assert record["arch_id"] == space.to_graph(x).arch_id and record["input_shape_json"] == "[1, 3, 16, 16]"


@pytest.mark.parametrize("latency", ["nan", "-1", "inf"])
def test_an_export_row_with_an_impossible_latency_is_refused_in_one_line(tmp_path: Path, capsys,
                                                                          latency: str) -> None:
    """`latbench import` took -1 and inf, and nan with a 48-line traceback."""
    with Store(tmp_path / "a.db") as store:
        import_nb201_table(store, write_table(tmp_path / "t.csv.gz", nb201_table()[:3]), "lat_ms_gold_6226", "gold")
        export(store, tmp_path / "a.csv", "csv")
    frame = pd.read_csv(tmp_path / "a.csv")
    frame["latency_ms"] = frame["latency_ms"].astype(object)
    frame.loc[1, "latency_ms"] = latency
    frame.to_csv(tmp_path / "bad.csv", index=False)
    db = str(tmp_path / "b.db")
    assert main(["latbench", "import", str(tmp_path / "bad.csv"), "--db", db, "--format", "hwnas"]) == 2
    err = capsys.readouterr().err
    assert "row 3" in err and "latency_ms must be a finite number > 0" in err and len(err.splitlines()) == 1, err
    with Store(db) as store:
        assert list(store.measurements()) == []
