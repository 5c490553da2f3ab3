"""Single-flight: concurrent requests for one key share one load.

The first caller starts the load as a task; later callers await the same task. A caller that
goes away (a client disconnect) does not cancel it for the others, and a failure reaches every
caller still waiting without being kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


def _retrieve_exception(task: asyncio.Task[object]) -> None:
    # Every waiter may have gone away; the failure still reached whoever awaited it.
    if not task.cancelled():
        task.exception()


class SingleFlight(Generic[K, V]):
    """Loads in flight, by key."""

    def __init__(self) -> None:
        self._tasks: dict[K, asyncio.Task[V]] = {}

    def running(self, key: K) -> bool:
        return key in self._tasks

    async def run(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """`load()`'s result, sharing a load of `key` already running."""
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.create_task(self._load(key, load), name=f"single-flight {key}")
            task.add_done_callback(_retrieve_exception)
            self._tasks[key] = task
        # shield: one caller's cancellation must not cancel the load the others wait for.
        return await asyncio.shield(task)

    async def _load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        try:
            return await load()
        finally:
            del self._tasks[key]

    async def close(self) -> None:
        """Cancel the loads still running, so no task outlives its owner."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
