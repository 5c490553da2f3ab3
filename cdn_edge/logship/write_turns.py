"""Shard processes taking turns at an embedded store's single writer, without polling.

SQLite lets one process write at a time; a second writer waits in SQLite's busy handler,
which sleeps in steps of up to 100 ms and so leaves a core idle while the first commits a
40 ms batch. Shards of one log into one SQLite file therefore queue on a lock file first
(flock, blocking): the waiting process sleeps in the kernel and wakes the moment the other
has committed, so one process parses while the other writes. Scylla takes writes from many
clients at once and needs no turns.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from cdn_edge.logship.errors import ShipperStateError


class WriteTurns:
    """A blocking, cross-process lock around store writes (a context manager)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise ShipperStateError(f"cannot open the write lock {path}: {exc}") from exc

    def __enter__(self) -> None:
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
