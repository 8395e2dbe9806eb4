"""The durable store on real SQLite files: schema versions, idempotent enqueue, leases, exactly-once records."""

import sqlite3
import threading
from pathlib import Path

import pytest

from hwnas.controller.store import ArchRecord, JobSpec, MeasurementRecord, RegisteredAgent, SchemaError, Store
from hwnas.controller.store.schema import SCHEMA_VERSION

ARCH = ArchRecord(arch_id="a" * 64, space="nb201", arch="|x|", encoding="3 3 3 3 3 3", macs=10, params=5,
                  cg_json="{}")
STATS = {"count": 10, "min_ms": 1.0, "mean_ms": 1.5, "median_ms": 1.4, "p90_ms": 2.0, "p99_ms": 2.5,
         "max_ms": 3.0, "std_ms": 0.2}


def record(job, latency_ms: float = 1.2, agent: str = "agent-1") -> MeasurementRecord:
    return MeasurementRecord(job_key=job.job_key, arch_id=job.arch_id, device_key=job.device_key,
                             backend=job.backend, protocol=job.protocol, protocol_params=job.protocol_params,
                             batch_size=job.batch_size, input_shape=[1, 3, 32, 32], latency_ms=latency_ms,
                             stats=STATS, agent_name=agent, agent_version="0.1.0", started_unix_ns=1,
                             finished_unix_ns=2, environment={"threads": 1})


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path: Path) -> str:
    """A fresh store location: a SQLite file, or a real PostgreSQL server when one is configured."""
    return str(tmp_path / "hwnas.db") if request.param == "sqlite" else request.getfixturevalue("postgres_url")


@pytest.fixture
def store(target: str):
    with Store(target) as s:
        s.add_architectures([ARCH])
        yield s


def specs(n: int, device: str = "rpi4", **kw) -> list[JobSpec]:
    return [JobSpec(campaign="c1", arch_id=ARCH.arch_id, device_key=device, protocol_params={"runs": k + 1}, **kw)
            for k in range(n)]


def test_a_new_store_is_sqlite_wal_at_the_current_schema(tmp_path: Path) -> None:
    with Store(tmp_path / "x.db") as s:
        assert s.schema_version == SCHEMA_VERSION
    assert sqlite3.connect(tmp_path / "x.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_store_from_a_newer_hwnas_is_refused(tmp_path: Path) -> None:
    Store(tmp_path / "x.db").close()
    with sqlite3.connect(tmp_path / "x.db") as conn:
        conn.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION + 1,))
    with pytest.raises(SchemaError, match="newer than this hwnas"):
        Store(tmp_path / "x.db")


def test_processes_opening_a_new_store_at_once_all_see_a_complete_schema(tmp_path: Path) -> None:
    """Creating the schema is one transaction: nobody sees the tables without their version row."""
    import subprocess
    import sys

    path = str(tmp_path / "race.db")
    code = f"from hwnas.controller.store import Store\nwith Store({path!r}) as s: print(s.schema_version)"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(6)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [out.strip() for out, _ in results] == [str(SCHEMA_VERSION)] * 6, [err for _, err in results]


def legacy_store(path: Path, version: int) -> None:
    """A store as hwnas wrote it at schema ``version`` (1 to 6), holding ARCH and one job."""
    from sqlalchemy import create_engine, insert

    from hwnas.controller.store import schema

    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        added_tables = {"agents": 2, "device_health": 7}
        schema.metadata.create_all(conn, tables=[t for t in schema.metadata.sorted_tables
                                                 if version >= added_tables.get(t.name, 1)])
        added_in = {("jobs", "model_format"): 3, ("measurements", "model_format"): 3,
                    ("measurements", "power_sampling_period_s"): 3, ("measurements", "idle_power_w"): 3,
                    ("measurements", "warnings_json"): 4, **{("measurements", c): 5 for c in (
                        "load_ms", "first_inference_ms", "peak_memory_bytes", "memory_source", "op_profile_json")},
                    ("measurements", "model_bytes"): 6, ("jobs", "op_profile"): 6, ("jobs", "memory"): 6,
                    ("jobs", "submitted_by"): 6, ("jobs", "output_check"): 6,
                    ("measurements", "output_check_status"): 6, ("measurements", "output_max_abs_error"): 6}
        for (table, column), since in added_in.items():
            if version < since:
                conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        conn.execute(insert(schema.schema_version).values(version=version))
        conn.execute(insert(schema.architectures).values(**vars(ARCH)))
        spec = specs(1)[0]
        conn.exec_driver_sql(
            "INSERT INTO jobs (job_key, campaign, arch_id, device_key, backend, protocol, protocol_params_json, "
            "batch_size, priority, state, attempts, max_attempts, created_at_unix_s, updated_at_unix_s) "
            f"VALUES ('{spec.job_key}', 'c1', '{ARCH.arch_id}', 'rpi4', 'onnxruntime', 'latbench', '{{}}', 1, 0, "
            "'queued', 0, 3, 0, 0)")
    engine.dispose()


@pytest.mark.parametrize("version", [1, 2, 3, 4, 5, 6])
def test_an_older_store_is_migrated_and_keeps_its_rows(tmp_path: Path, version: int) -> None:
    """v1 (before dial-in agents) gains the agents table; v1 and v2 (before model formats) gain model_format;
    v1-v3 gain the measurements' warnings; v1-v4 gain cold start, memory and op profiles; v1-v5 the model's
    size; v1-v6 the device keys' golden-model health."""
    legacy_store(tmp_path / "old.db", version)
    with Store(tmp_path / "old.db") as s:
        assert s.schema_version == SCHEMA_VERSION == 7
        assert s.registered_agents() == [] and s.key_health() == {} and s.quarantined_keys() == {}
        assert s.architecture(ARCH.arch_id) == ARCH
        job = s.lease("rpi4", "w", 10)
        assert job.job_key == specs(1)[0].job_key and job.model_format == "onnx"
        assert s.enqueue(specs(1)) == 0  # the old job key still names the same ONNX job
    versions = sqlite3.connect(tmp_path / "old.db").execute("SELECT version FROM schema_version").fetchall()
    assert sorted(v for (v,) in versions) == list(range(version, 8))


def test_a_tflite_job_is_a_different_job_from_the_onnx_one(store: Store) -> None:
    onnx_job = specs(1)[0]
    tflite_job = JobSpec(**{**vars(onnx_job), "backend": "litert", "model_format": "tflite"})
    int8_job = JobSpec(**{**vars(tflite_job), "model_format": "tflite-int8"})
    assert store.enqueue([onnx_job, tflite_job, int8_job]) == 3
    assert {store.lease("rpi4", "w", 10).model_format for _ in range(3)} == {"onnx", "tflite", "tflite-int8"}


def test_set_priority_reorders_a_campaigns_queued_jobs(store: Store) -> None:
    store.enqueue(specs(2))
    store.enqueue([JobSpec(campaign="urgent", arch_id=ARCH.arch_id, device_key="rpi4", protocol="fixed")])
    assert store.lease("rpi4", "w", 10).campaign == "c1"  # same priority: oldest first
    assert store.set_priority("urgent", 5) == 1
    assert store.lease("rpi4", "w", 10).campaign == "urgent"


def agent_row(agent_id: str, name: str = "pi", seen: float = 1000.0) -> RegisteredAgent:
    return RegisteredAgent(agent_id=agent_id, device_key="rpi4", name=name, version="0.1", peer="ipv4:10.0.0.7:1",
                           backends="onnxruntime", registered_at_unix_s=seen, last_seen_at_unix_s=seen, lease_s=30)


def test_heartbeats_renew_the_agents_leases_and_a_restart_replaces_its_silent_former_life(store: Store) -> None:
    store.enqueue(specs(3))
    store.register_agent(agent_row("id-first"), "{}")
    assert store.heartbeat("id-unknown", now=1001) is None
    job = store.lease("rpi4", "id-first", 30, now=1001)
    dropped = store.lease("rpi4", "id-first", 30, now=1001)  # e.g. its model could not be fetched
    assert store.heartbeat("id-first", job.id, now=1020) is True
    assert store.job(job.id).lease_expires_at_unix_s == 1050  # extended by the agent's lease length
    assert store.job(dropped.id).state == "queued"  # not kept alive by heartbeats that do not name it
    assert store.requeue_expired(now=1040) == 0
    assert store.heartbeat("id-first", dropped.id, now=1041) is False  # that lease is no longer the agent's
    store.register_agent(agent_row("id-other", name="other-pi", seen=1100), "{}")  # another agent: both kept
    store.register_agent(agent_row("id-second", seen=1100), "{}")  # "pi" restarted; its old life was silent
    assert [a.agent_id for a in store.registered_agents()] == ["id-other", "id-second"]
    # stale after three missed heartbeats (every 5 s), not after a whole lease
    assert store.agent("id-second").healthy(1115) and not store.agent("id-second").healthy(1117)


def test_a_heartbeat_that_crosses_a_fresh_lease_does_not_drop_it(store: Store) -> None:
    """The heartbeat thread can send job_id 0 while the LeaseJob reply is still on its way to the agent.

    Dropping that job let a neighbour on the same host lease and measure at the same time as the agent,
    which was measuring the job it had been given.
    """
    store.enqueue(specs(1))
    store.register_agent(agent_row("id-first"), "{}")
    job = store.lease("rpi4", "id-first", 30, now=1001)
    assert store.heartbeat("id-first", 0, now=1002) is False
    assert store.job(job.id).state == "leased" and store.job(job.id).lease_owner == "id-first"
    store.heartbeat("id-first", 0, now=1017)  # half a lease later, an unnamed job was truly dropped
    assert store.job(job.id).state == "queued"


def test_enqueue_is_idempotent_so_rerunning_a_campaign_resumes(store: Store) -> None:
    assert store.enqueue(specs(5)) == 5
    assert store.enqueue(specs(7)) == 2
    assert store.counts() == {"rpi4": {"queued": 7, "leased": 0, "done": 0, "failed": 0}}


def test_leases_follow_priority_then_age_and_stay_within_the_device_key(store: Store) -> None:
    store.enqueue(specs(2) + [JobSpec(campaign="c1", arch_id=ARCH.arch_id, device_key="rpi4", priority=5)])
    store.enqueue(specs(1, device="jetson"))
    first = store.lease("rpi4", "w1", 30)
    assert first.protocol_params == {} and first.attempts == 1  # the priority-5 job
    assert store.lease("rpi4", "w1", 30).protocol_params == {"runs": 1}
    assert store.lease("rpi4", "w2", 30).protocol_params == {"runs": 2}
    assert store.lease("rpi4", "w2", 30) is None
    assert store.lease("jetson", "w3", 30).device_key == "jetson"


def test_an_expired_lease_goes_back_to_the_queue_and_its_late_record_still_counts_once(store: Store) -> None:
    store.enqueue(specs(1))
    stale = store.lease("rpi4", "dead-worker", 10, now=100.0)
    assert store.requeue_expired(now=105.0) == 0
    assert store.requeue_expired(now=111.0) == 1
    assert store.renew_owners(["dead-worker"], 10, now=112.0) == 0  # its lease is lost
    fresh = store.lease("rpi4", "live-worker", 10, now=112.0)
    assert fresh.id == stale.id and fresh.attempts == 2
    assert store.complete(record(fresh, agent="live")) is True
    assert store.complete(record(stale, agent="dead")) is False  # the late duplicate adds no row
    rows = list(store.measurements())
    assert len(rows) == 1 and rows[0]["agent_name"] == "live"
    assert store.counts()["rpi4"]["done"] == 1


def test_transient_failures_retry_until_max_attempts_and_permanent_ones_stop(store: Store) -> None:
    store.enqueue(specs(2, max_attempts=2))
    job = store.lease("rpi4", "w", 30)
    assert store.fail(job, "UNAVAILABLE: link dropped", permanent=False) == "queued"
    job = store.lease("rpi4", "w", 30)
    assert job.attempts == 2
    assert store.fail(job, "UNAVAILABLE again", permanent=False) == "failed"
    other = store.lease("rpi4", "w", 30)
    assert store.fail(other, "INVALID_ARGUMENT: onnxruntime refused the model", permanent=True) == "failed"
    assert store.lease("rpi4", "w", 30) is None
    assert store.counts()["rpi4"]["failed"] == 2


def test_release_gives_leases_back_without_spending_an_attempt(store: Store) -> None:
    store.enqueue(specs(2))
    store.lease("rpi4", "w", 30)
    store.lease("rpi4", "w", 30)
    assert store.release("w") == 2
    assert store.lease("rpi4", "w2", 30).attempts == 1


def test_workers_racing_for_jobs_never_share_one(target: str) -> None:
    """Four threads, each with its own Store (own connections) on one database, drain 200 jobs."""
    path = target
    with Store(path) as s:
        s.add_architectures([ARCH])
        s.enqueue(specs(200))
    taken: dict[str, list[int]] = {}

    def worker(name: str) -> None:
        with Store(path) as s:
            mine = taken.setdefault(name, [])
            while (job := s.lease("rpi4", name, 60)) is not None:
                mine.append(job.id)
                s.complete(record(job, agent=name))

    threads = [threading.Thread(target=worker, args=(f"w{k}",)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    all_ids = [i for ids in taken.values() for i in ids]
    assert len(all_ids) == len(set(all_ids)) == 200
    with Store(path) as s:
        assert len(list(s.measurements())) == 200 and s.counts()["rpi4"]["done"] == 200


def test_big_integers_fit(store: Store) -> None:
    """VGG-16's 1.5e10 MACs and nanosecond timestamps overflow a 32-bit INTEGER (PostgreSQL's)."""
    big = ArchRecord(arch_id="b" * 64, space="x", arch="vgg", encoding="", macs=15_470_264_320,
                     params=138_357_544, cg_json="{}")
    store.add_architectures([big])
    store.enqueue([JobSpec(campaign="c", arch_id=big.arch_id, device_key="gpu")])
    job = store.lease("gpu", "w", 30)
    rec = record(job)
    store.complete(MeasurementRecord(**{**vars(rec), "started_unix_ns": 1_763_000_000_000_000_000,
                                        "finished_unix_ns": 1_763_000_000_123_456_789}))
    (row,) = store.measurements("gpu")
    assert row["macs"] == 15_470_264_320 and row["finished_unix_ns"] == 1_763_000_000_123_456_789


def test_records_are_long_form_with_units_and_the_architecture(store: Store) -> None:
    store.enqueue(specs(1))
    job = store.lease("rpi4", "w", 30)
    store.complete(record(job))
    (row,) = store.measurements(device_key="rpi4")
    assert row["latency_ms"] == 1.2 and row["p99_ms"] == 2.5 and row["count"] == 10
    assert row["space"] == "nb201" and row["macs"] == 10 and row["protocol_params_json"] == '{"runs":1}'
    assert row["power_available"] is False and row["environment_json"] == '{"threads": 1}'


def test_complete_and_lease_records_and_hands_out_the_next_job_in_one_go(store: Store) -> None:
    store.enqueue(specs(3))
    first = store.lease("rpi4", "w1", 30, now=100.0)
    added, second = store.complete_and_lease(record(first, agent="a"), "rpi4", "w1", 30, now=101.0)
    assert added and second is not None and second.lease_owner == "w1" and second.id != first.id
    added, third = store.complete_and_lease(record(first, agent="a"), "rpi4", "w1", 30, now=102.0)
    assert not added and third is not None and third.id not in (first.id, second.id)  # a duplicate still moves on
    assert store.renew_owners(["w1"], 30, now=110.0) == 2
    assert {j.lease_expires_at_unix_s for j in store.leased()} == {140.0}
    assert store.complete_and_lease(record(second, agent="a"), "rpi4", "w1", 30)[1] is None  # queue empty
    assert store.counts()["rpi4"] == {"queued": 0, "leased": 1, "done": 2, "failed": 0}


def test_records_with_power_and_energy_export_to_csv_and_parquet_with_the_documented_types(store: Store,
                                                                                           tmp_path: Path) -> None:
    """`latbench export --format parquet` crashed (ArrowTypeError) on any record with a power sampling period
    or an idle baseline: the export typed them as strings. One record per source of power figures."""
    import pandas as pd
    import pyarrow.parquet as pq

    from hwnas.controller.store.export import export

    powers = [  # an energy counter (RAPL), a sampled source with an idle baseline (NVML), a simulator's model
        {"available": True, "source": "rapl", "mean_power_w": 11.5, "energy_per_inference_mj": 3.2,
         "sampling_period_s": 0.0, "idle_power_w": 0.0},
        {"available": True, "source": "nvml:0", "mean_power_w": 80.0, "energy_per_inference_mj": 40.0,
         "sampling_period_s": 0.1, "idle_power_w": 22.5},
        {"available": True, "source": "simulator:zigzag tpu_like", "mean_power_w": 1.5,
         "energy_per_inference_mj": 0.25, "sampling_period_s": 0.0, "idle_power_w": 0.0},
        {"available": False, "unavailable_reason": "rapl: no powercap driver"},
    ]
    store.enqueue(specs(len(powers)))
    for power in powers:
        leased = store.lease("rpi4", "w", 10)
        assert store.complete(MeasurementRecord(**{**vars(record(leased)), "power": power,
                                                   "warnings": ("the CPU throttled",)}))
    assert export(store, tmp_path / "x.parquet", "parquet") == export(store, tmp_path / "x.csv", "csv") == 4
    schema = pq.read_schema(tmp_path / "x.parquet")
    for column in ("mean_power_w", "energy_per_inference_mj", "power_sampling_period_s", "idle_power_w"):
        assert str(schema.field(column).type) == "double", column
    assert str(schema.field("power_available").type) == "bool"
    for frame in (pd.read_parquet(tmp_path / "x.parquet"), pd.read_csv(tmp_path / "x.csv")):
        frame = frame.sort_values("power_source", na_position="last").reset_index(drop=True)
        assert frame["idle_power_w"].tolist()[:3] == [22.5, 0.0, 0.0]
        assert frame["power_sampling_period_s"].dtype == "float64" and frame["idle_power_w"].dtype == "float64"
        assert frame["power_available"].tolist() == [True, True, True, False]
        assert frame["warnings_json"].str.contains("throttled").all()
