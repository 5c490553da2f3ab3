"""The shipper's durable position in the access log: which file, and how far.

A file is known by its device and inode (a rename keeps them, so a rotated file is found
again) and by a hash of its first bytes (an inode number is reused once a file is deleted,
and copytruncate keeps the inode while replacing the content). The position is saved only
after the lines before it are in the session store, in a small JSON file replaced atomically
(write, fsync, rename, fsync the directory), so a crash leaves the old or the new position,
never a torn one. A lock file keeps a second shipper off the same position.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from cdn_edge.logship.errors import ShipperStateError

HEAD_BYTES = 1024  # hashed from the start of a file: a whole first line of nginx's format


@dataclass(frozen=True)
class LogPosition:
    """`offset` bytes of the file (device, inode) have been shipped."""

    device: int
    inode: int
    offset: int
    head_len: int = 0  # bytes hashed from the file's start: min(HEAD_BYTES, offset)
    head_sha256: str = ""  # of those bytes; "" while head_len is 0

    def __post_init__(self) -> None:
        if self.offset < 0 or not 0 <= self.head_len <= min(HEAD_BYTES, self.offset):
            raise ValueError(
                f"offset {self.offset} and head_len {self.head_len} do not describe a position"
            )


class PositionStore(Protocol):
    """Where the shipper keeps its position."""

    def load(self) -> LogPosition | None:
        """The saved position, None if there is none. Raises ShipperStateError."""
        ...

    def save(self, position: LogPosition) -> None:
        """Replace the saved position durably. Raises ShipperStateError."""
        ...


class OffsetFile:
    """PositionStore in a JSON file, with a lock file beside it held while open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_fd: int | None = None

    def lock(self) -> None:
        """Take the lock; ShipperStateError if another shipper holds it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ShipperStateError(f"cannot create the lock for {self.path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ShipperStateError(
                f"another shipper holds {self.path}.lock; one shipper per log file"
            ) from None
        self._lock_fd = fd

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    def load(self) -> LogPosition | None:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ShipperStateError(f"cannot read {self.path}: {exc}") from exc
        try:
            return LogPosition(**json.loads(text))
        except (ValueError, TypeError) as exc:
            raise ShipperStateError(
                f"{self.path} does not hold a log position ({exc}); move it away to start the"
                " log from its beginning"
            ) from exc

    def save(self, position: LogPosition) -> None:
        tmp = self.path.with_name(f"{self.path.name}.tmp")
        data = json.dumps(asdict(position), sort_keys=True).encode()
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)  # the rename itself survives a power cut
            finally:
                os.close(directory)
        except OSError as exc:
            raise ShipperStateError(f"cannot save the log position in {self.path}: {exc}") from exc
