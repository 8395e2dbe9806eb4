"""The controller's durable dataset and job queue (SQLAlchemy; SQLite by default)."""

from hwnas.controller.store.records import (
    ArchRecord,
    InvalidRecord,
    Job,
    JobSpec,
    MeasurementRecord,
    RegisteredAgent,
    make_job_key,
)
from hwnas.controller.store.store import SchemaError, Store, StoreOpenError, StoreUnavailable, database_url

__all__ = ["ArchRecord", "InvalidRecord", "Job", "JobSpec", "MeasurementRecord", "RegisteredAgent", "SchemaError",
           "Store",
           "StoreOpenError", "StoreUnavailable", "database_url", "make_job_key"]
