"""Fixtures of the controller's tests."""

import json
import os
from pathlib import Path

import pytest
import sqlalchemy

from tests.built_once import built_once


@pytest.fixture
def postgres_url() -> str:
    """An empty database on a real PostgreSQL server, when one is configured (.ci/run starts one)."""
    url = os.environ.get("HWNAS_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("HWNAS_TEST_POSTGRES_URL is not set (.ci/run sets it when .ci/postgres.sh can start a server)")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:  # each pytest-xdist worker empties a database of its own, never another worker's
        server = sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT")
        name = f"hwnas_test_{worker}"
        with server.connect() as conn:
            found = conn.execute(sqlalchemy.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name})
            if found.first() is None:
                conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        server.dispose()
        url = sqlalchemy.engine.make_url(url).set(database=name).render_as_string(hide_password=False)
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """A small AutoGO segment database and PSC predictor made through the CLI (shared by the AutoGO and
    dashboard tests)."""
    from hwnas.controller.cli.main import main

    def build(root: Path) -> None:
        assert main(["autogo", "build-db", "--out", str(root / "seg"), "--samples-per-space", "8", "--vocab-size",
                     "400", "--quiet"]) == 0
        assert main(["autogo", "train-psc", "--segments", str(root / "seg"), "--out", str(root / "psc"), "--train",
                     "40", "--valid", "10", "--test", "20", "--per-graph", "3", "--epochs", "2", "--quiet"]) == 0

    root = built_once(tmp_path_factory, "autogo", build)
    report = json.loads((root / "psc" / "evaluation.json").read_text())
    assert report["train_samples"] == 120 and report["test"] == 20 and -1 <= report["psc_fold_srcc"] <= 1
    return root / "seg", root / "psc"
