"""Content-addressed on-disk model cache with a size cap and LRU eviction.

Files are named by the lower-case hex sha256 of their bytes. Recency lives in
the files' mtimes, so the LRU order survives agent restarts. Uploads stream
into a temporary file, are hashed as they arrive, and become visible only by
an atomic rename after the hash matches; a failed upload leaves nothing
behind. Models in use by a measurement are pinned and never evicted.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hwnas.device_agent.errors import CacheFull, IntegrityError, InvalidInput, ModelNotFound, ModelTooLarge

SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def check_sha256(value: str, field: str = "sha256") -> str:
    if not SHA256_HEX.fullmatch(value):
        raise InvalidInput(f"{field} must be 64 lower-case hex characters, got {value[:80]!r}")
    return value


@dataclass(frozen=True)
class CacheUsage:
    capacity_bytes: int
    used_bytes: int
    free_bytes: int  # room left under the cap, bounded by the disk's free space
    models: int


class ModelCache:
    def __init__(self, root: Path, capacity_bytes: int) -> None:
        if capacity_bytes <= 0:
            raise ValueError("cache capacity must be positive")
        self.root = Path(root)
        self.capacity_bytes = capacity_bytes
        self._tmp = self.root / "incoming"
        self._tmp.mkdir(parents=True, exist_ok=True)
        for stale in self._tmp.iterdir():  # leftovers of uploads cut off by a crash
            stale.unlink(missing_ok=True)
        self._lock = threading.Lock()
        self._pins: Counter[str] = Counter()
        self._reserved: Counter[str] = Counter()  # bytes declared by uploads in progress, by temporary file
        entries = [p for p in self.root.iterdir() if p.is_file() and SHA256_HEX.fullmatch(p.name)]
        entries.sort(key=lambda p: p.stat().st_mtime_ns)
        self._lru: OrderedDict[str, int] = OrderedDict((p.name, p.stat().st_size) for p in entries)

    def _path(self, sha256: str) -> Path:
        return self.root / sha256

    def size_of(self, sha256: str) -> int | None:
        with self._lock:
            return self._lru.get(sha256)

    def usage(self) -> CacheUsage:
        """Bytes held by cached models and promised to uploads in progress."""
        with self._lock:
            used, count = sum(self._lru.values()) + sum(self._reserved.values()), len(self._lru)
        disk_free = shutil.disk_usage(self.root).free
        return CacheUsage(self.capacity_bytes, used, max(0, min(self.capacity_bytes - used, disk_free)), count)

    @contextmanager
    def pinned(self, sha256: str) -> Iterator[Path]:
        """The model's path, marked recently used and protected from eviction while held."""
        with self._lock:
            if sha256 not in self._lru:
                raise ModelNotFound(f"model {sha256} is not in this agent's cache; upload it first")
            self._lru.move_to_end(sha256)
            self._pins[sha256] += 1
        path = self._path(sha256)
        os.utime(path)
        try:
            yield path
        finally:
            with self._lock:
                self._pins[sha256] -= 1
                if self._pins[sha256] <= 0:
                    del self._pins[sha256]

    def _evict_for(self, size: int) -> None:
        """Drop least-recently-used, unpinned models until ``size`` more bytes fit. Caller holds the lock.

        Uploads in progress count as used: each reserves its declared size when it starts, so stalled
        uploads cannot fill the disk past the cap.
        """
        in_flight = sum(self._reserved.values())
        used = sum(self._lru.values()) + in_flight
        for victim in list(self._lru):
            if used + size <= self.capacity_bytes:
                break
            if self._pins.get(victim):
                continue
            used -= self._lru.pop(victim)
            self._path(victim).unlink(missing_ok=True)
        if used + size > self.capacity_bytes:
            raise CacheFull(
                f"cannot fit {size} bytes: {used - in_flight} of {self.capacity_bytes} bytes are held by models in "
                f"use and {in_flight} by uploads in progress; retry later"
            )

    @contextmanager
    def receive(self, sha256: str, size_bytes: int) -> Iterator[UploadSink]:
        """Accept one upload; it lands in the cache only if the block exits cleanly and the hash matches.

        The declared size is reserved for the whole upload; a failed or cut-off upload leaves no file.
        """
        check_sha256(sha256)
        if size_bytes <= 0:  # an empty file is no model in any format
            raise InvalidInput(f"size_bytes must be > 0 (a model has bytes), got {size_bytes}")
        if size_bytes > self.capacity_bytes:
            raise ModelTooLarge(
                f"model of {size_bytes} bytes exceeds the agent's cache capacity of {self.capacity_bytes} bytes "
                f"(hwnas-agent serve --cache-size)"
            )
        with self._lock:
            self._evict_for(size_bytes)
            fd, tmp_name = tempfile.mkstemp(dir=self._tmp, prefix=sha256[:16] + ".")
            self._reserved[tmp_name] = size_bytes
        sink = UploadSink(os.fdopen(fd, "wb"), size_bytes)
        try:
            yield sink
            sink.close()
            if sink.received != size_bytes:
                raise IntegrityError(f"upload ended after {sink.received} of {size_bytes} declared bytes")
            digest = sink.hexdigest()
            if digest != sha256:
                raise IntegrityError(f"sha256 of the received bytes is {digest}, the header declared {sha256}")
            with self._lock:
                del self._reserved[tmp_name]
                if sha256 not in self._lru:
                    self._evict_for(size_bytes)
                    os.replace(tmp_name, self._path(sha256))
                self._lru[sha256] = size_bytes
                self._lru.move_to_end(sha256)
        finally:
            sink.close()
            with self._lock:
                self._reserved.pop(tmp_name, None)
            Path(tmp_name).unlink(missing_ok=True)


class UploadSink:
    """Writes chunks to disk and hashes them on the way; refuses more than was declared."""

    def __init__(self, handle, declared: int) -> None:
        self._handle = handle
        self._declared = declared
        self._hash = hashlib.sha256()
        self.received = 0

    def write(self, data: bytes) -> None:
        self.received += len(data)
        if self.received > self._declared:
            raise InvalidInput(f"upload sent more than the {self._declared} bytes its header declared")
        self._hash.update(data)
        self._handle.write(data)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()
