"""The durable store: the job queue, the agent registry and the dataset on one database.

SQLite (WAL) by default, any SQLAlchemy URL (PostgreSQL) for shared labs. Each room is a module of its
own (``queue``, ``agents``, ``dataset``, ``health``, over ``database``); ``Store`` is the one object callers open.
"""

from __future__ import annotations

from hwnas.controller.store.agents import AgentRegistry
from hwnas.controller.store.database import (
    SchemaError,
    StoreOpenError,
    StoreUnavailable,
    database_url,
    explain,
    sqlite_path,
    writable,
)
from hwnas.controller.store.dataset import Dataset
from hwnas.controller.store.health import HealthRegistry, KeyHealth
from hwnas.controller.store.queue import STATES, JobQueue

__all__ = ["STATES", "KeyHealth", "SchemaError", "Store", "StoreOpenError", "StoreUnavailable", "database_url",
           "explain",
           "sqlite_path", "writable"]


class Store(JobQueue, AgentRegistry, Dataset, HealthRegistry):
    """Use as a context manager: ``with Store(path_or_url) as store: ...``; see the rooms for what it does."""
