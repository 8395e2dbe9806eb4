"""Fixtures of the controller's tests."""

import os

import pytest
import sqlalchemy


@pytest.fixture
def postgres_url() -> str:
    """An empty database on a real PostgreSQL server, when one is configured (.ci/run starts one)."""
    url = os.environ.get("HWNAS_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("HWNAS_TEST_POSTGRES_URL is not set (.ci/run sets it when .ci/postgres.sh can start a server)")
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    return url
