"""Errors the agent reports to clients, each tied to one gRPC status code.

Modules below the server raise these; the server turns them into a status and
a message and keeps serving. Keeping the code as a string lets the measurement
code stay free of gRPC.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base class: a failure the client caused or must know about."""

    status_code = "INTERNAL"


class InvalidInput(AgentError):
    status_code = "INVALID_ARGUMENT"


class ModelNotFound(AgentError):
    status_code = "NOT_FOUND"


class IntegrityError(AgentError):
    status_code = "DATA_LOSS"


class CacheFull(AgentError):
    """The cache is busy (models in use, uploads in progress): retrying later can succeed."""

    status_code = "RESOURCE_EXHAUSTED"


class ModelTooLarge(AgentError):
    """The model exceeds the cache's capacity: no retry helps until the agent's --cache-size grows."""

    status_code = "FAILED_PRECONDITION"


class MeasurementStopped(AgentError):
    """A measurement ended before it finished; ``status_code`` says why."""

    def __init__(self, message: str, status_code: str, timed_samples_done: int = 0) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.timed_samples_done = timed_samples_done
