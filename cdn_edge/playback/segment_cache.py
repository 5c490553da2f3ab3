"""The origin shield's memory: an LRU of object bytes, bounded by size, with single-flight.

Hot segments are served from memory (per-request file responses are about 5x slower, see
docs/baselines.md). Concurrent misses on one key share one load (`SingleFlight`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cdn_edge.single_flight import SingleFlight

Load = Callable[[], Awaitable[bytes]]

LARGEST_ENTRY_FRACTION = 4  # one object may fill at most a quarter of the cache


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0  # loads started
    coalesced: int = 0  # misses that joined a load already running
    evictions: int = 0

    @property
    def hit_ratio(self) -> float:
        lookups = self.hits + self.misses + self.coalesced
        return self.hits / lookups if lookups else 0.0


class SegmentCache:
    """Bytes by object key, at most `max_bytes` of them, least recently used evicted first."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"segment cache size must be at least 0 bytes, got {max_bytes}")
        self.max_bytes = max_bytes
        self._max_entry = max_bytes // LARGEST_ENTRY_FRACTION
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._flights: SingleFlight[str, bytes] = SingleFlight()
        self.size = 0
        self.stats = CacheStats()

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, key: str) -> bytes | None:
        """The cached bytes, marked as recently used, or None; never loads."""
        data = self._entries.get(key)
        if data is not None:
            self._entries.move_to_end(key)
            self.stats.hits += 1
        return data

    async def get(self, key: str, load: Load) -> bytes:
        """The object's bytes, from memory or by `load()`, called once however many ask."""
        data = self.peek(key)
        if data is not None:
            return data
        if self._flights.running(key):
            self.stats.coalesced += 1
        else:
            self.stats.misses += 1
        return await self._flights.run(key, lambda: self._load(key, load))

    async def _load(self, key: str, load: Load) -> bytes:
        data = await load()
        self._store(key, data)
        return data

    def _store(self, key: str, data: bytes) -> None:
        if len(data) > self._max_entry:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= len(old)
        self._entries[key] = data
        self.size += len(data)
        while self.size > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.size -= len(evicted)
            self.stats.evictions += 1

    async def close(self) -> None:
        """Cancel loads still running, so no task outlives the application."""
        await self._flights.close()
        self._entries.clear()
        self.size = 0
