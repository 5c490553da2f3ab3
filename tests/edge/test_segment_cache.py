"""The segment cache: LRU by bytes, single-flight, failures and cancellation."""

from __future__ import annotations

import asyncio

import pytest

from cdn_edge.playback.segment_cache import SegmentCache


class Loads:
    """A loader that counts calls and can be held until released."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    def __call__(self, key: str, size: int = 10, fail: bool = False):
        async def load() -> bytes:
            self.calls.append(key)
            await self.gate.wait()
            if fail:
                raise OSError(f"store failed for {key}")
            return key.encode()[:1] * size

        return load


async def test_hit_after_miss() -> None:
    cache, loads = SegmentCache(1000), Loads()
    assert await cache.get("a", loads("a")) == b"a" * 10
    assert await cache.get("a", loads("a")) == b"a" * 10
    assert loads.calls == ["a"]
    assert (cache.stats.hits, cache.stats.misses) == (1, 1)
    assert cache.stats.hit_ratio == 0.5
    assert cache.size == 10


async def test_single_flight_concurrent_misses_load_once() -> None:
    cache, loads = SegmentCache(1000), Loads()
    loads.gate.clear()
    waiters = [asyncio.create_task(cache.get("a", loads("a"))) for _ in range(50)]
    await asyncio.sleep(0)
    loads.gate.set()
    results = await asyncio.gather(*waiters)
    assert results == [b"a" * 10] * 50
    assert loads.calls == ["a"]
    assert cache.stats.misses == 1 and cache.stats.coalesced == 49


async def test_lru_eviction_bounded_by_bytes() -> None:
    cache, loads = SegmentCache(100), Loads()
    for key in "abcd":
        await cache.get(key, loads(key, size=25))
    assert cache.size == 100
    await cache.get("a", loads("a", size=25))  # touch a: b is now least recently used
    await cache.get("e", loads("e", size=25))
    assert cache.peek("b") is None
    assert cache.peek("a") is not None
    assert cache.size == 100 and len(cache) == 4
    assert cache.stats.evictions == 1


async def test_objects_larger_than_a_quarter_are_served_not_kept() -> None:
    cache, loads = SegmentCache(100), Loads()
    assert len(await cache.get("big", loads("big", size=26))) == 26
    assert cache.size == 0
    await cache.get("big", loads("big", size=26))
    assert loads.calls == ["big", "big"]


async def test_failure_reaches_every_waiter_and_is_not_cached() -> None:
    cache, loads = SegmentCache(1000), Loads()
    loads.gate.clear()
    waiters = [asyncio.create_task(cache.get("a", loads("a", fail=True))) for _ in range(3)]
    await asyncio.sleep(0)
    loads.gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)
    assert await cache.get("a", loads("a")) == b"a" * 10
    assert loads.calls == ["a", "a"]


async def test_a_cancelled_waiter_does_not_cancel_the_load() -> None:
    cache, loads = SegmentCache(1000), Loads()
    loads.gate.clear()
    first = asyncio.create_task(cache.get("a", loads("a")))
    second = asyncio.create_task(cache.get("a", loads("a")))
    await asyncio.sleep(0)
    first.cancel()
    loads.gate.set()
    assert await second == b"a" * 10
    with pytest.raises(asyncio.CancelledError):
        await first
    assert cache.peek("a") == b"a" * 10


async def test_close_cancels_running_loads() -> None:
    cache, loads = SegmentCache(1000), Loads()
    loads.gate.clear()
    waiter = asyncio.create_task(cache.get("a", loads("a")))
    await asyncio.sleep(0)
    await cache.close()
    with pytest.raises(asyncio.CancelledError):
        await waiter


def test_negative_size_refused() -> None:
    with pytest.raises(ValueError, match="at least 0"):
        SegmentCache(-1)
