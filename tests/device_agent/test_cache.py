"""The content-addressed model cache: integrity, cap, LRU order across restarts, pins."""

import hashlib
import os
from pathlib import Path

import pytest

from hwnas.device_agent.cache import ModelCache
from hwnas.device_agent.errors import CacheFull, IntegrityError, InvalidInput, ModelNotFound, ModelTooLarge
from tests.sync import wait_for


def put(cache: ModelCache, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    with cache.receive(sha, len(data)) as sink:
        sink.write(data)
    return sha


def test_a_hash_mismatch_stores_nothing(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path, 1000)
    with pytest.raises(IntegrityError, match="sha256 of the received bytes"):
        with cache.receive("0" * 64, 3) as sink:
            sink.write(b"abc")
    assert cache.usage().models == 0
    assert not list((tmp_path / "incoming").iterdir())


def test_short_and_long_uploads_are_refused(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path, 1000)
    sha = hashlib.sha256(b"abcd").hexdigest()
    with pytest.raises(IntegrityError, match="after 3 of 4"):
        with cache.receive(sha, 4) as sink:
            sink.write(b"abc")
    with pytest.raises(InvalidInput, match="more than the 4 bytes"):
        with cache.receive(sha, 4) as sink:
            sink.write(b"abcde")
    assert cache.size_of(sha) is None


def test_least_recently_used_is_evicted_first_and_order_survives_restart(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path, 300)
    a, b = put(cache, b"a" * 100), put(cache, b"b" * 100)
    probe, written = tmp_path.parent / f"{tmp_path.name}.clock", (tmp_path / b).stat().st_mtime_ns

    def file_clock_moved() -> bool:  # file times tick coarsely (a few ms): a touch now must read later than b
        probe.touch()
        return probe.stat().st_mtime_ns > written

    wait_for(file_clock_moved, "the file system's clock to move past b's write")
    with cache.pinned(a):  # a becomes most recently used
        pass
    restarted = ModelCache(tmp_path, 300)
    c = put(restarted, b"c" * 150)  # needs 50 more bytes than free: b (least recent) goes
    assert restarted.size_of(b) is None and not (tmp_path / b).exists()
    assert restarted.size_of(a) == 100 and restarted.size_of(c) == 150


def test_pinned_models_are_never_evicted(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path, 200)
    a = put(cache, b"a" * 150)
    with cache.pinned(a):
        with pytest.raises(CacheFull, match="held by models in use"):
            put(cache, b"b" * 100)
    put(cache, b"b" * 100)
    assert cache.size_of(a) is None


def test_a_model_larger_than_the_cap_is_refused_before_any_byte(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path, 100)
    with pytest.raises(ModelTooLarge, match="exceeds the agent's cache capacity"):
        with cache.receive("a" * 64, 101):
            pytest.fail("must not accept bytes")


def test_unknown_model_and_malformed_hash(tmp_path: Path) -> None:
    cache = ModelCache(tmp_path, 100)
    with pytest.raises(ModelNotFound):
        with cache.pinned("b" * 64):
            pass
    with pytest.raises(InvalidInput, match="64 lower-case hex"):
        with cache.receive("XYZ", 1):
            pass


def test_stale_partial_uploads_are_swept_at_start(tmp_path: Path) -> None:
    (tmp_path / "incoming").mkdir()
    (tmp_path / "incoming" / "deadbeef.partial").write_bytes(b"x")
    (tmp_path / ("f" * 64)).write_bytes(b"model")
    os.utime(tmp_path / ("f" * 64))
    cache = ModelCache(tmp_path, 100)
    assert not list((tmp_path / "incoming").iterdir())
    assert cache.usage().models == 1 and cache.usage().used_bytes == 5
