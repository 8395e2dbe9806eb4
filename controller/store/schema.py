"""Tables of the controller's dataset store, and the migrations that lead to the current schema.

Long-form and self-describing: one row per measurement, saying what was measured (arch), on what
(device key, backend, agent), how (protocol and its parameters) and when, with units in column names.
The job table is the durable work queue of campaigns.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    false,
)

from hwnas.controller.store.records import RECORD_COLUMNS, RecordColumn

SCHEMA_VERSION = 7
metadata = MetaData()

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True),
)

architectures = Table(
    "architectures", metadata,
    Column("arch_id", String(64), primary_key=True),
    Column("space", String(64), nullable=False),
    Column("arch", Text, nullable=False),  # the space's string form
    Column("encoding", Text, nullable=False),  # space-separated integers
    Column("macs", BigInteger, nullable=False),  # VGG-16: 1.5e10, beyond a 32-bit INTEGER
    Column("params", BigInteger, nullable=False),
    Column("cg_json", Text, nullable=False),  # canonical CG: any job can rebuild its model from it
)

jobs = Table(
    "jobs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_key", String(200), nullable=False, unique=True),
    Column("campaign", String(200), nullable=False),
    Column("arch_id", String(64), ForeignKey("architectures.arch_id"), nullable=False),
    Column("device_key", String(200), nullable=False),
    Column("backend", String(64), nullable=False),
    Column("model_format", String(32), nullable=False, server_default="onnx"),  # v3
    Column("op_profile", Boolean, nullable=False, server_default=false()),  # v6: the job asks for per-op times
    Column("memory", Boolean, nullable=False, server_default=false()),  # v6: ... and for the model's footprint
    Column("output_check", Boolean, nullable=False, server_default=false()),  # v6: ... and for an output check
    Column("submitted_by", String(400), nullable=False, server_default=""),  # v6: who queued it (audit)
    Column("protocol", String(64), nullable=False),
    Column("protocol_params_json", Text, nullable=False),
    Column("batch_size", Integer, nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("state", String(16), nullable=False),  # queued | leased | done | failed
    Column("lease_owner", String(200)),
    Column("lease_expires_at_unix_s", Float),
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False),
    Column("last_error", Text),
    Column("created_at_unix_s", Float, nullable=False),
    Column("updated_at_unix_s", Float, nullable=False),
    Index("ix_jobs_queue", "device_key", "state", "priority", "id"),
    Index("ix_jobs_campaign", "campaign", "state"),
)


def _column(column: RecordColumn) -> Column:
    """The table column of one record column: its type, nullability, and the default older rows took."""
    if column.kind is str:
        kind = String(column.size) if column.size else Text
    elif column.kind is int:
        kind = BigInteger if column.wide else Integer
    else:
        kind = {float: Float, bool: Boolean}[column.kind]
    keys = {"job_key": {"unique": True}}.get(column.name, {})
    links = [ForeignKey("architectures.arch_id")] if column.name == "arch_id" else []
    default = {"server_default": column.before} if column.before is not None else {}
    return Column(column.name, kind, *links, nullable=column.nullable, **keys, **default)


measurements = Table(  # one row per record: the columns are RECORD_COLUMNS (records.py)
    "measurements", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    *(_column(column) for column in RECORD_COLUMNS),
    Index("ix_measurements_device", "device_key", "arch_id"),
)

agents = Table(  # agents that dialled in (registered); configured agents the controller dials are not here
    "agents", metadata,
    Column("agent_id", String(64), primary_key=True),  # random per agent process
    Column("device_key", String(200), nullable=False),
    Column("name", String(200), nullable=False),
    Column("version", String(64), nullable=False),
    Column("peer", String(200), nullable=False),  # where the controller saw it call from
    Column("backends", String(400), nullable=False),  # comma-separated
    Column("device_info_json", Text, nullable=False),
    Column("registered_at_unix_s", Float, nullable=False),
    Column("last_seen_at_unix_s", Float, nullable=False),
    Column("lease_s", Float, nullable=False),  # unhealthy after this long without a heartbeat
    Index("ix_agents_device", "device_key"),
)

device_health = Table(  # v7: a device key's golden-model health (controller.fleet.health); no row: never judged
    "device_health", metadata,
    Column("device_key", String(200), primary_key=True),
    Column("quarantined", Boolean, nullable=False),  # no leases for the key until cleared
    Column("reason", Text, nullable=False),  # why it was quarantined (the drifted check, against the baseline)
    Column("quarantined_at_unix_s", Float),
    Column("baseline_from_unix_s", Float, nullable=False),  # checks recorded before this are not its series
    Column("last_good_unix_s", Float),  # when its last check within the baseline's bounds was recorded
    Column("last_status", String(16), nullable=False),  # the last check's verdict: baseline | ok | suspect | drift
    Column("last_drift", Float),  # ... its distance beyond the baseline's interval (relative; + slower)
    Column("last_check_ms", Float),  # ... its latency
    Column("baseline", Text, nullable=False),  # the baseline as judged: mean, 95 % interval, checks
    Column("cleared_by", String(400), nullable=False),  # who last cleared a quarantine (audit)
    Column("cleared_at_unix_s", Float),
)


def _v1_to_v2(conn: Connection) -> None:
    """v2 adds the registry of agents that dial out to the controller."""
    agents.create(conn)


def _v2_to_v3(conn: Connection) -> None:
    """v3 records the model format a job sends (earlier rows were all ONNX) and how power was read."""
    for table in ("jobs", "measurements"):
        conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN model_format VARCHAR(32) NOT NULL DEFAULT 'onnx'")
    for column in ("power_sampling_period_s", "idle_power_w"):
        conn.exec_driver_sql(f"ALTER TABLE measurements ADD COLUMN {column} FLOAT")


def _v3_to_v4(conn: Connection) -> None:
    """v4 keeps the warnings an agent attaches to a measurement (interference, throttling, power)."""
    conn.exec_driver_sql("ALTER TABLE measurements ADD COLUMN warnings_json TEXT NOT NULL DEFAULT '[]'")


def _v4_to_v5(conn: Connection) -> None:
    """v5 keeps cold start (load, first inference), peak memory with its source, and per-op profiles, which
    the vendor tool backends report."""
    for column, kind in (("load_ms", "FLOAT"), ("first_inference_ms", "FLOAT"), ("peak_memory_bytes", "BIGINT"),
                         ("memory_source", "TEXT")):
        conn.exec_driver_sql(f"ALTER TABLE measurements ADD COLUMN {column} {kind}")
    conn.exec_driver_sql("ALTER TABLE measurements ADD COLUMN op_profile_json TEXT NOT NULL DEFAULT '[]'")


def _v5_to_v6(conn: Connection) -> None:
    """v6 keeps the size of the model file the agent ran, whether a job asks for a per-op profile and for the
    model's memory footprint, and who submitted the job."""
    conn.exec_driver_sql("ALTER TABLE measurements ADD COLUMN model_bytes BIGINT")
    for column in ("op_profile", "memory", "output_check"):
        conn.exec_driver_sql(f"ALTER TABLE jobs ADD COLUMN {column} BOOLEAN NOT NULL DEFAULT FALSE")
    conn.exec_driver_sql("ALTER TABLE jobs ADD COLUMN submitted_by VARCHAR(400) NOT NULL DEFAULT ''")
    conn.exec_driver_sql("ALTER TABLE measurements ADD COLUMN output_check_status VARCHAR(16)")
    conn.exec_driver_sql("ALTER TABLE measurements ADD COLUMN output_max_abs_error FLOAT")


def _v6_to_v7(conn: Connection) -> None:
    """v7 keeps each device key's golden-model health: its quarantine, and where its baseline begins."""
    device_health.create(conn)


# MIGRATIONS[v] upgrades a database at version v to v + 1. Append only; never edit a released step.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4,
                                                      4: _v4_to_v5, 5: _v5_to_v6, 6: _v6_to_v7}
