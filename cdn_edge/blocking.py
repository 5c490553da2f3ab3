"""Blocking calls (the object store, SQLite) off the event loop, each under a deadline."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from cdn_edge.errors import Unavailable

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_THREADS = 16  # store reads are I/O bound; enough to overlap a burst of cold misses
DEFAULT_TIMEOUT_S = 10.0  # a 10 MB FLAC segment from a slow S3 still arrives well within this


class BlockingRunner:
    """Runs a blocking function in a dedicated thread pool and waits at most `timeout_s`."""

    def __init__(self, threads: int = DEFAULT_THREADS, timeout_s: float = DEFAULT_TIMEOUT_S):
        self.timeout_s = timeout_s
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="edge-io")

    async def __call__(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.within(self.timeout_s, functools.partial(fn, *args, **kwargs))

    async def within(self, timeout_s: float, call: Callable[[], T]) -> T:
        """Run `call()` in the pool; Unavailable (503) if it takes longer than `timeout_s`."""
        loop = asyncio.get_running_loop()
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # arrives as the call completes, and a shutdown would then wait forever.
            async with asyncio.timeout(timeout_s):
                return await loop.run_in_executor(self._executor, call)
        except TimeoutError as exc:
            inner = getattr(call, "func", call)
            name = getattr(inner, "__qualname__", repr(inner))
            raise Unavailable(f"{name} did not finish within {timeout_s} s") from exc

    def close(self) -> None:
        # Threads stuck in a hung backend call are abandoned rather than waited for.
        self._executor.shutdown(wait=False, cancel_futures=True)
