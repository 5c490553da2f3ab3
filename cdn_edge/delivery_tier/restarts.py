"""Restarting a supervised child with capped exponential backoff.

The policy is a frozen dataclass and a pure function; `Restarting` holds one child's state
and takes the clock as an argument, so tests drive it without sleeping.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from streamer.errors import StreamerError

logger = logging.getLogger(__name__)


class Handle(Protocol):
    def running(self) -> bool: ...

    def stop(self) -> int | None: ...


H = TypeVar("H", bound=Handle)


@dataclass(frozen=True)
class Backoff:
    """Delays before restarts: `initial_s`, doubling, capped at `max_s`."""

    initial_s: float = 1.0
    max_s: float = 30.0
    # A child that ran this long before it died is not crash-looping: start again at once.
    stable_s: float = 60.0
    # Consecutive failed starts (or crashes within stable_s) before giving up; None: never.
    max_failures: int | None = None

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError(f"backoff {self.initial_s}-{self.max_s} s: need 0 < initial <= max")


def restart_delay(policy: Backoff, failures: int) -> float:
    """The wait before the next start after `failures` consecutive failures (0 for none)."""
    if failures <= 0:
        return 0.0
    return float(min(policy.max_s, policy.initial_s * 2 ** (failures - 1)))


class GaveUp(Exception):
    """`max_failures` consecutive failures: the caller decides what that means."""


class Restarting(Generic[H]):
    """One supervised child: noticed when it dies, started again after the backoff."""

    def __init__(self, name: str, start: Callable[[], H], policy: Backoff) -> None:
        self.name = name
        self.handle: H | None = None
        self._start = start
        self._policy = policy
        self._failures = 0
        self._started_at = 0.0
        self._next_start: float | None = None

    def start(self, now: float) -> H:
        """Start the child now; its errors propagate (used for the first start)."""
        self.handle = self._start()
        self._started_at = now
        self._next_start = None
        return self.handle

    def check(self, now: float) -> None:
        """Notice a death and schedule a restart; start the child when its delay is over.

        Raises GaveUp after `max_failures` consecutive failures.
        """
        if self.handle is not None and not self.handle.running():
            ran_s = now - self._started_at
            self._failures = 1 if ran_s >= self._policy.stable_s else self._failures + 1
            status = self.handle.stop()  # reaps it, and whatever it left in its process group
            self._schedule(now, f"{self.handle!r} exited with {status} after {ran_s:.1f} s")
            self.handle = None
        if self.handle is None and self._next_start is not None and now >= self._next_start:
            try:
                self.start(now)
                logger.warning("%s restarted: %r", self.name, self.handle)
            except StreamerError as exc:
                self._failures += 1
                self._schedule(now, f"restart failed: {exc}")

    def _schedule(self, now: float, what: str) -> None:
        limit = self._policy.max_failures
        if limit is not None and self._failures > limit:
            raise GaveUp(f"{self.name}: {what}; {self._failures - 1} restarts in a row failed")
        delay = restart_delay(self._policy, self._failures)
        self._next_start = now + delay
        logger.error("%s: %s; restarting in %.1f s", self.name, what, delay)
