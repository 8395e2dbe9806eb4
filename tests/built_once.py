"""Session fixtures that cost seconds to build, built once per test run rather than once per xdist worker.

Each pytest-xdist worker has a session of its own, so a session fixture used by test files on both workers
(a trained GENNAPE, an AutoGO database) would be built twice. Workers share the parent of their base
temporary folders; the first worker to get the lock builds there, the others wait and reuse the result.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock


def built_once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """The folder ``name`` that ``build(folder)`` filled, built by one worker of this run."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        folder = factory.mktemp(name)
        build(folder)
        return folder
    shared = factory.getbasetemp().parent
    folder, done = shared / name, shared / f"{name}.done"
    with FileLock(str(shared / f"{name}.lock")):
        if not done.exists():
            folder.mkdir(exist_ok=True)
            build(folder)
            done.touch()  # a build that failed leaves no mark: the next worker builds (and fails) again
    return folder
