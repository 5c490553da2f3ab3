"""Each listener's recently measured throughput, so a new session can start at the right rate.

Sources: the `_HLS_throughput` players send on steering reloads (and, later, CMCD `mtp` and
segment delivery timings). The in-memory history is per process and bounded; a shared store
(a Scylla table keyed by user) can implement the same two methods.
"""

from __future__ import annotations

import statistics
from collections import OrderedDict
from typing import Protocol

MAX_USERS = 100_000  # about 25 MB: a tuple of a few (time, kbit/s) pairs per user
SAMPLES_PER_USER = 5  # the median of the last five resists one stalled or bursty fragment
MAX_AGE_S = 6 * 3600.0  # older samples may come from another network (home Wi-Fi vs. train)


class ThroughputHistory(Protocol):
    """Recent throughput per user, in kbit/s."""

    def get(self, user_id: str, now: float) -> int | None:
        """The user's recent throughput, or None when nothing recent is known."""
        ...

    def record(self, user_id: str, kbps: int, now: float) -> None:
        """Remember one measurement."""
        ...


class RecentThroughput:
    """In memory: the last few samples of the most recently active users (LRU)."""

    def __init__(
        self,
        max_users: int = MAX_USERS,
        samples: int = SAMPLES_PER_USER,
        max_age_s: float = MAX_AGE_S,
    ) -> None:
        if max_users < 1 or samples < 1 or max_age_s <= 0:
            raise ValueError(
                f"max_users ({max_users}) and samples ({samples}) must be at least 1 and "
                f"max_age_s ({max_age_s}) positive"
            )
        self._max_users = max_users
        self._samples = samples
        self._max_age_s = max_age_s
        self._users: OrderedDict[str, tuple[tuple[float, int], ...]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._users)

    def get(self, user_id: str, now: float) -> int | None:
        samples = self._users.get(user_id)
        if samples is None:
            return None
        fresh = [kbps for at, kbps in samples if now - at <= self._max_age_s]
        if not fresh:
            del self._users[user_id]
            return None
        return int(statistics.median(fresh))

    def record(self, user_id: str, kbps: int, now: float) -> None:
        if kbps < 1:
            return
        previous = self._users.pop(user_id, ())
        self._users[user_id] = (*previous, (now, kbps))[-self._samples :]
        if len(self._users) > self._max_users:
            self._users.popitem(last=False)
