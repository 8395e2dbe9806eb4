"""A dataset on a full disk, on a read-only mount, or with an immutable -shm: one clear line, nothing lost.

The disk and the read-only mount are real: a small tmpfs, filled with a file or remounted read-only.
Mounting needs root (CI runs as root); elsewhere these tests skip, saying so.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hwnas.controller.fleet import campaign
from hwnas.controller.spaces.catalog import sample
from hwnas.controller.store import Store

from ..conftest import start_agent
from .test_campaign import NB201, assert_exactly_one_row_per_job


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def hwnas(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwnas.controller.cli", *args], capture_output=True, text=True,
                          timeout=300)


def build_args(db: Path, address: str, n: int, campaign_name: str) -> list[str]:
    return ["latbench", "build", "--space", "nb201", "--devices", "k", "--sample", str(n), "--seed", "9",
            "--protocol", "fixed", "--param", "count=5", "--db", str(db), "--agent", f"k={address}", "--quiet",
            "--insecure", "--lease-seconds", "5", "--campaign", campaign_name, "--no-golden"]


def one_clear_line(stderr: str, says: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("hwnas ")]
    assert len(lines) == 1 and says in lines[0], stderr
    assert len(stderr.splitlines()) <= 3, stderr


def test_a_full_disk_mid_campaign_stops_with_one_line_and_a_rerun_loses_nothing(small_disk: Path,
                                                                                tmp_path: Path) -> None:
    db = small_disk / "ds.db"
    agent = start_agent(tmp_path / "cache")
    try:
        with Store(db) as store:  # the jobs are queued while there is room
            campaign.enqueue(store, NB201, sample(NB201, 40, 9), campaign.CampaignPlan(
                campaign="c", device_keys=["k"], protocol="fixed", protocol_params={"count": 5.0}))
            planned = sum(store.counts()["k"].values())
        filler = small_disk / "filler"
        with filler.open("wb") as handle:  # leave ~150 kB: room to open the dataset, not for 40 records
            handle.write(b"\0" * (shutil.disk_usage(small_disk).free - 150_000))
        full = hwnas(*build_args(db, agent.address, 40, "c"))
        assert full.returncode == 2
        one_clear_line(full.stderr, "the disk is full; free space on it")
        with Store(db, read_only=True) as store:
            done_while_full = store.counts()["k"]["done"]
        assert done_while_full < planned
        filler.unlink()
        again = hwnas(*build_args(db, agent.address, 40, "c"))
        assert again.returncode == 0, again.stderr
        assert "0 new job(s)" in again.stdout
        with Store(db) as store:
            rows = assert_exactly_one_row_per_job(store, planned)
        assert len(rows) >= done_while_full  # nothing recorded while the disk was full was lost
    finally:
        agent.stop()


def test_a_read_only_dataset_answers_status_and_export_and_refuses_builds_in_one_line(small_disk: Path,
                                                                                     tmp_path: Path) -> None:
    db = small_disk / "ds.db"
    agent = start_agent(tmp_path / "cache")
    try:
        assert hwnas(*build_args(db, agent.address, 3, "c")).returncode == 0
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
        status = hwnas("latbench", "status", "--db", str(db))
        assert status.returncode == 0 and " 3" in status.stdout.splitlines()[1], status.stderr
        export = hwnas("latbench", "export", "--db", str(db), "--format", "csv", "--out", str(tmp_path / "x.csv"))
        assert export.returncode == 0 and "wrote 3 rows" in export.stdout, export.stderr
        refused = hwnas(*build_args(db, agent.address, 3, "c"))
        assert refused.returncode == 2
        one_clear_line(refused.stderr, "is read-only")
    finally:
        agent.stop()


def test_status_reads_a_dataset_whose_shm_file_is_immutable(tmp_path: Path) -> None:
    """SQLite maps the -shm file for writing; an immutable one made reads fail (or SIGBUS)."""
    import sqlite3

    if shutil.which("chattr") is None:
        pytest.skip("no chattr on this machine")
    db = tmp_path / "ds.db"
    with Store(db) as store:
        campaign.enqueue(store, NB201, sample(NB201, 2, 1), campaign.CampaignPlan(campaign="c", device_keys=["k"]))
    holder = sqlite3.connect(db)  # keeps -wal and -shm in place, as a running campaign does
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("SELECT count(*) FROM jobs").fetchall()
    shm = Path(f"{db}-shm")
    if subprocess.run(["chattr", "+i", str(shm)], capture_output=True).returncode != 0:
        holder.close()
        pytest.skip("cannot make a file immutable here (needs root and a filesystem with the flag)")
    try:
        status = hwnas("latbench", "status", "--db", str(db))
        assert status.returncode == 0, status.stderr
        assert "k" in status.stdout and " 2" in status.stdout
        refused = hwnas("latbench", "build", "--space", "nb201", "--devices", "k", "--sample", "2", "--db", str(db),
                        "--agent", "k=127.0.0.1:1", "--insecure")
        assert refused.returncode == 2
        one_clear_line(refused.stderr, "is read-only")
    finally:
        subprocess.run(["chattr", "-i", str(shm)], check=False)
        holder.close()
