"""Whether the shipper has shipped nginx's access log to its end: read from its position file.

At shutdown nginx has stopped writing, so the log is final: the shipper is given a bounded
time to reach its end before it is stopped (what is left ships on the next start).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from cdn_edge.logship.errors import ShipperStateError
from cdn_edge.logship.offsets import LogPosition, OffsetFile

POLL_S = 0.1


def shipped_to_end(position: LogPosition | None, log: os.stat_result | None) -> bool:
    """Whether `position` is the end of the file `log` describes (None: there is no log)."""
    if log is None:
        return True
    if position is None:
        return log.st_size == 0  # the shipper saves a position only once it has read lines
    same_file = (position.device, position.inode) == (log.st_dev, log.st_ino)
    return same_file and position.offset >= log.st_size


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


def wait_shipped(
    state_file: Path,
    log: Path,
    timeout_s: float,
    *,
    alive: Callable[[], bool] = lambda: True,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Wait up to `timeout_s` for the shipper's position to reach the end of `log`, while
    `alive()`; whether it did."""
    deadline = clock() + timeout_s
    positions = OffsetFile(state_file)  # read only: the running shipper holds the lock
    while True:
        try:
            if shipped_to_end(positions.load(), _stat(log)):
                return True
        except ShipperStateError:
            pass  # being replaced, or broken: the shipper will say so itself
        if clock() >= deadline or not alive():
            return False
        sleep(POLL_S)
