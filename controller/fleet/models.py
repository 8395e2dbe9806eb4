"""The model cache of the fleet: each job's model exported from its stored CG once, by content hash."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from typing import NamedTuple

from hwnas.controller.fleet.client import sha256_hex
from hwnas.controller.graph import ComputationGraph
from hwnas.controller.graph.model_formats import identity, model_format
from hwnas.controller.spaces import Candidate
from hwnas.controller.store import ArchRecord, Job, Store

log = logging.getLogger("hwnas.models")


def model_bytes(arch: ArchRecord, fmt: str = "onnx", batch: int = 1) -> bytes:
    """A stored architecture's model in a format, for inputs of ``batch`` samples (deterministic bytes).

    An ONNX model carries the architecture's identity as metadata, so an agent that replays a recorded
    table (``--backend replay``) knows which row to answer.
    """
    return model_format(fmt).export(ComputationGraph.from_json(arch.cg_json).with_batch(batch),
                                    identity(arch.space, arch.arch, arch.arch_id))


class ModelKey(NamedTuple):
    """What a model's bytes depend on: the architecture, the format and the batch size it takes."""

    arch_id: str
    model_format: str = "onnx"
    batch_size: int = 1

    @classmethod
    def of(cls, job: Job) -> ModelKey:
        return cls(job.arch_id, job.model_format, job.batch_size)


class ModelSource:
    """(arch_id, format, batch) -> sha256 and bytes of its model, exported from the stored CG on first use.

    The sha256 of every model seen is kept (64 bytes each); the bytes only for recently used models, up to
    ``budget_bytes`` (an OFA-ResNet50 subnet is up to ~190 MB), and are re-exported when needed again.
    Export is deterministic, so a re-export has the same hash. Submitted models are exported ahead of the
    workers by one thread (``prepare``), so exporting the next model overlaps the agent measuring this one.
    """

    OFFERED_KEPT = 1024  # in-memory graphs of recently submitted candidates
    AHEAD = 8  # models exported ahead and not yet taken by a worker, at most

    def __init__(self, store: Store, budget_bytes: int = 256 << 20) -> None:
        self.store = store
        self.budget_bytes = budget_bytes
        self._offered: OrderedDict[str, Candidate] = OrderedDict()
        self._sha: dict[ModelKey, str] = {}
        self._arch_of: dict[str, ModelKey] = {}
        self._bytes: OrderedDict[str, bytes] = OrderedDict()
        self._held_bytes = 0
        self._lock = threading.Lock()
        self._ahead_wanted: deque[ModelKey] = deque()  # prepared, in the order the workers will want them
        self._ahead_ready: dict[ModelKey, int] = {}  # exported ahead, not yet taken: their sizes
        self._exporting: dict[ModelKey, threading.Event] = {}  # set when the export ahead ends
        self._ahead_wake = threading.Condition(self._lock)
        self._ahead_thread: threading.Thread | None = None
        self._closed = False

    def sha256(self, key: ModelKey) -> str:
        with self._lock:
            sha = self._sha.get(key)
            self._taken(key)
        return sha if sha is not None else sha256_hex(self.model(key))

    def model(self, key: ModelKey) -> bytes:
        """The model's bytes: held, being exported ahead (waited for), or exported now."""
        while True:
            with self._lock:
                self._taken(key)
                sha = self._sha.get(key)
                if sha is not None and sha in self._bytes:
                    self._bytes.move_to_end(sha)
                    return self._bytes[sha]
                exporting = self._exporting.get(key)
                if exporting is None:  # ours to export: the exporter ahead skips it meanwhile
                    exporting = self._exporting[key] = threading.Event()
                    break
            exporting.wait()
        try:
            return self._export(key)
        finally:
            with self._lock:
                del self._exporting[key]
            exporting.set()

    def _export(self, key: ModelKey) -> bytes:
        with self._lock:
            offered = self._offered.get(key.arch_id)
        if offered is not None:  # the candidate's graph as submitted: no round trip through the store's JSON
            data = model_format(key.model_format).export(
                offered.graph.with_batch(key.batch_size), identity(offered.space, offered.arch, key.arch_id))
        else:
            data = model_bytes(self.store.architecture(key.arch_id), key.model_format, key.batch_size)
        sha = sha256_hex(data)
        with self._lock:
            self._sha[key] = sha
            self._arch_of[sha] = key
            if sha not in self._bytes:
                self._bytes[sha] = data
                self._held_bytes += len(data)
            while self._held_bytes > self.budget_bytes and len(self._bytes) > 1:
                self._held_bytes -= len(self._bytes.popitem(last=False)[1])
        return data

    # -- export ahead ----------------------------------------------------------------------------------
    def prepare(self, keys: Sequence[ModelKey]) -> None:
        """Export these models ahead of the workers, in order, at most ``AHEAD`` (and half the byte budget)
        not yet taken; a worker that wants one before its turn exports it itself."""
        with self._lock:
            if self._closed:
                return
            self._ahead_wanted.extend(k for k in keys if k not in self._sha)
            if self._ahead_thread is None:
                self._ahead_thread = threading.Thread(target=self._export_ahead, name="export-ahead", daemon=True)
                self._ahead_thread.start()
            self._ahead_wake.notify()

    def close(self) -> None:
        """Stop exporting ahead (what is being exported finishes)."""
        with self._lock:
            self._closed = True
            self._ahead_wanted.clear()
            self._ahead_wake.notify()
        if self._ahead_thread is not None:
            self._ahead_thread.join(60)

    def _room_ahead(self) -> bool:
        return (len(self._ahead_ready) < self.AHEAD
                and sum(self._ahead_ready.values()) < self.budget_bytes // 2)

    def _export_ahead(self) -> None:
        while True:
            with self._lock:
                self._ahead_wake.wait_for(lambda: self._closed or (self._ahead_wanted and self._room_ahead()))
                if self._closed:
                    return
                key = self._ahead_wanted.popleft()
                if key in self._sha or key in self._exporting:
                    continue
                done = self._exporting[key] = threading.Event()
            try:
                size = len(self._export(key))
            except Exception:  # the worker that wants it exports it again and records why it failed
                size = -1
            with self._lock:
                del self._exporting[key]
                if size >= 0:
                    self._ahead_ready[key] = size
            done.set()

    def _taken(self, key: ModelKey) -> None:
        """A worker took a model exported ahead: room for the next (called with the lock held)."""
        if self._ahead_ready.pop(key, None) is not None:
            self._ahead_wake.notify()

    def offer(self, candidate: Candidate) -> None:
        """Keep a submitted candidate's graph, so its model is exported from it rather than from the store.

        Export is deterministic and the store's JSON is the graph's canonical form, so the bytes (and hash)
        are the same either way; a restarted controller exports from the store.
        """
        with self._lock:
            self._offered[candidate.arch_id] = candidate
            self._offered.move_to_end(candidate.arch_id)
            while len(self._offered) > self.OFFERED_KEPT:
                self._offered.popitem(last=False)

    def by_sha256(self, sha: str) -> bytes:
        """The bytes of a model this source has handed out; KeyError for any other hash."""
        with self._lock:
            key = self._arch_of[sha]
        return self.model(key)

    def wire_format(self, sha: str) -> str:
        """What goes in the upload header of a model this source has handed out ("onnx", "tflite")."""
        with self._lock:
            return model_format(self._arch_of[sha].model_format).wire_format
