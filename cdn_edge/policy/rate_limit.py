"""Per-session token buckets with an injected clock.

Each session may burst `capacity` requests, then `rate_per_s` a second; a caller may size one
key's bucket itself (the key budget depends on the session's track). The table of buckets is
bounded: the least recently used session is forgotten first, which at worst gives it a full
bucket again.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_MAX_TRACKED = 100_000  # sessions; ~100 bytes each


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """A token bucket per key (a session id)."""

    def __init__(
        self,
        capacity: float,
        rate_per_s: float,
        clock: Callable[[], float],
        max_tracked: int = DEFAULT_MAX_TRACKED,
    ) -> None:
        if capacity < 1 or rate_per_s <= 0:
            raise ValueError(
                f"a token bucket needs capacity >= 1 and rate > 0, got {capacity}, {rate_per_s}"
            )
        self.capacity = capacity
        self.rate_per_s = rate_per_s
        self._clock = clock
        self._max_tracked = max_tracked
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(
        self,
        key: str,
        count: int = 1,
        *,
        capacity: float | None = None,
        rate_per_s: float | None = None,
    ) -> float:
        """Take `count` tokens, all or none: 0.0 if granted, else the seconds until they will
        be available. `capacity` and `rate_per_s` size this key's bucket, else the defaults."""
        capacity = self.capacity if capacity is None else capacity
        rate_per_s = self.rate_per_s if rate_per_s is None else rate_per_s
        if not 1 <= count <= capacity or rate_per_s <= 0:
            raise ValueError(
                f"cannot take {count} tokens from a bucket of {capacity} at {rate_per_s}/s"
            )
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(capacity, now)
            self._buckets[key] = bucket
            if len(self._buckets) > self._max_tracked:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(capacity, bucket.tokens + elapsed * rate_per_s)
            bucket.updated = now
        if bucket.tokens >= count:
            bucket.tokens -= count
            return 0.0
        return (count - bucket.tokens) / rate_per_s

    def give_back(self, key: str, count: int) -> None:
        """Return `count` tokens taken from `key`'s bucket (what was taken was not used)."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.tokens += count  # take() caps at the capacity when it next refills


def retry_after_header(wait_s: float) -> int:
    """Retry-After takes whole seconds (RFC 9110 section 10.2.3); round up, at least 1."""
    return max(1, math.ceil(wait_s))
