"""``--db`` from the command line: a PostgreSQL URL reaches the server, bad locations fail in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy

from hwnas.controller.cli.main import main
from hwnas.controller.fleet.local_agent import LocalAgent


def test_the_cli_builds_trains_and_reports_on_a_postgresql_dataset(postgres_url: str, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture) -> None:
    """A real server: argparse must keep the URL's '//' (a Path folds it, and a stray SQLite file appears)."""
    monkeypatch.chdir(tmp_path)
    with LocalAgent(tmp_path / "cache") as agent:
        assert main(["latbench", "build", "--space", "nb201", "--sample", "12", "--seed", "1", "--devices", "k",
                     "--protocol", "fixed", "--param", "count=3", "--db", postgres_url, "--agent",
                     f"k={agent.address}", "--insecure", "--quiet"]) == 0
    assert main(["latbench", "status", "--db", postgres_url]) == 0
    assert main(["predictor", "train", "--db", postgres_url, "--device", "k", "--kind", "ridge"]) == 0
    out = capsys.readouterr().out
    folders = [p.name for p in tmp_path.iterdir() if p.name.endswith(".predictors")]
    url = sqlalchemy.engine.make_url(postgres_url)
    assert folders == [f"{url.database}@{url.host}.predictors"], folders  # named by database and host
    assert (tmp_path / folders[0] / "k" / "ridge" / "card.json").exists() and folders[0] in out
    assert not list(tmp_path.glob("postgresql*"))  # no SQLite file named after a folded URL


def test_an_unreachable_database_is_one_line_without_the_password(capsys: pytest.CaptureFixture) -> None:
    url = "postgresql+psycopg://lab:s3cret@127.0.0.1:1/hwnas"
    assert main(["latbench", "status", "--db", url]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hwnas latbench: cannot open the dataset at postgresql+psycopg://lab:***@127.0.0.1:1/hwnas")
    assert "s3cret" not in err and "Traceback" not in err


def test_a_dataset_in_a_new_folder_is_created_and_one_under_a_file_is_refused(tmp_path: Path,
                                                                              capsys: pytest.CaptureFixture) -> None:
    search = ["search", "--device", "none", "--objectives", "flops,params", "--algo", "random", "--evals", "2",
              "--quiet"]
    assert main([*search, "--db", str(tmp_path / "new" / "runs.db"), "--out", str(tmp_path / "o1")]) == 0
    assert (tmp_path / "new" / "runs.db").is_file()
    (tmp_path / "file").write_text("")
    assert main([*search, "--db", str(tmp_path / "file" / "runs.db"), "--out", str(tmp_path / "o2")]) == 2
    assert "hwnas search: cannot create the folder of the dataset" in capsys.readouterr().err


@pytest.mark.parametrize("db", ["not-sqlite", "mysql://user:secret@localhost/hwnas", "nosuchdb://host/x"])
def test_a_db_that_is_not_a_dataset_is_one_line(db: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A file that is not SQLite, or a mysql:// URL, gave a raw traceback."""
    if db == "not-sqlite":
        db = str(tmp_path / "notes.db")
        Path(db).write_text("these are my notes, not a dataset\n" * 10)
    assert main(["latbench", "status", "--db", db]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwnas latbench") and len(err.strip().splitlines()) == 1 and "secret" not in err, err
    assert any(text in err for text in ("is it an hwnas dataset", "not mysql", "not nosuchdb")), err


def test_an_export_to_a_full_device_or_a_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`export --out /dev/full` and an --out that is a folder gave raw tracebacks."""
    from hwnas.controller.data import nb201_table

    from .test_importers import write_table

    db = str(tmp_path / "ds.db")
    table = write_table(tmp_path / "t.csv.gz", nb201_table()[:4])
    assert main(["latbench", "import", str(table), "--db", db, "--format", "nb201-table", "--device", "k",
                 "--column", "lat_ms_pixel3"]) == 0
    capsys.readouterr()
    targets = [(tmp_path, "is a folder; name the file to write")]
    if Path("/dev/full").exists():
        targets.append((Path("/dev/full"), "No space left on device"))
    for out, expected in targets:
        for fmt in ("csv", "parquet"):
            assert main(["latbench", "export", "--db", db, "--out", str(out), "--format", fmt]) == 2
            err = capsys.readouterr().err
            assert expected in err and len(err.strip().splitlines()) == 1, err
