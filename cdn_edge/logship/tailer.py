"""Reading an access log by whole lines from a position, across rotations and truncations.

The tailer holds the file open by descriptor, so it reads a file to its end after it was
renamed (logrotate's `create`: rename, then nginx reopens on SIGUSR1) or even deleted. It
moves to the file now at the path only once the old one has been idle for `rotate_wait_s`
after the rename, since nginx writes to the old file until it reopens. A file that shrank
below the position, or whose first bytes changed (copytruncate, then refilled), is read
again from 0. A last line without its newline is not consumed until it is complete; when a
rotated file ends in one, it is skipped as torn.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cdn_edge.logship.log_line import MAX_LINE_BYTES, TOO_LONG, TORN
from cdn_edge.logship.offsets import HEAD_BYTES, LogPosition

logger = logging.getLogger(__name__)

# nginx reopens its logs within a second of SIGUSR1; logrotate's postrotate sends it at once.
ROTATE_WAIT_S = 5.0
HEAD_CHECK_INTERVAL_S = 1.0  # a busy file is checked for copytruncate at least this often
SCAN_BYTES = 1 << 20  # read size while skipping an overlong line


@dataclass(frozen=True)
class Skipped:
    """Bytes at `offset` that are no line: counted and logged by the shipper."""

    offset: int
    length: int
    reason: str


@dataclass(frozen=True)
class LogRead:
    """Complete lines (without newlines) read from `first_offset`, and the position after."""

    lines: tuple[bytes, ...]
    first_offset: int
    position: LogPosition | None  # None while no file exists at the path
    skipped: tuple[Skipped, ...] = ()
    switched: bool = False  # this read moved to another file (rotation or truncation)


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class LogTailer:
    """Reads the log at `path` from `start` (a saved position) or from its beginning."""

    def __init__(
        self,
        path: Path,
        start: LogPosition | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rotate_wait_s: float = ROTATE_WAIT_S,
    ) -> None:
        self.path = path
        self._clock = clock
        self._rotate_wait_s = rotate_wait_s
        self._fd: int | None = None
        self._identity = (0, 0)
        self._offset = 0
        self._head_len = 0
        self._head_sha256 = ""
        self._rotated_at: float | None = None  # when the path was first seen naming another file
        self._idle_size = -1
        self._next_head_check = 0.0
        self._resume(start)

    # Position

    @property
    def position(self) -> LogPosition | None:
        if self._fd is None:
            return None
        device, inode = self._identity
        return LogPosition(device, inode, self._offset, self._head_len, self._head_sha256)

    @property
    def rotation_pending(self) -> bool:
        """Whether the path names another file than the one being read (not switched yet)."""
        return self._rotated_at is not None

    def bytes_behind(self) -> int:
        """Bytes in the log not yet read: the rest of this file and, if renamed, the new one."""
        if self._fd is None:
            return self._size_at_path()
        behind = max(0, os.fstat(self._fd).st_size - self._offset)
        st = self._stat_path()
        if st is not None and _identity(st) != self._identity:
            behind += st.st_size
        return behind

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # Reading

    def read(self, max_lines: int, max_bytes: int) -> LogRead:
        """Up to `max_lines` complete lines in about `max_bytes`; an empty read at the end."""
        if self._fd is None and not self._open_path(0):
            return LogRead((), 0, None)
        assert self._fd is not None
        start = self._offset
        if self._clock() >= self._next_head_check:
            switched = self._check_replaced()
            if switched is not None:
                return switched
        data = os.pread(self._fd, max(max_bytes, MAX_LINE_BYTES + 1), start)
        end = data.rfind(b"\n")
        if end >= 0:
            lines = data[:end].split(b"\n")
            if len(lines) > max_lines:
                lines = lines[:max_lines]
                consumed = sum(len(line) + 1 for line in lines)
            else:
                consumed = end + 1
            self._advance(start + consumed)
            return LogRead(tuple(lines), start, self.position)
        if len(data) > MAX_LINE_BYTES:
            return self._skip_overlong(start)
        return self._at_end(start, len(data))

    def _advance(self, offset: int) -> None:
        self._offset = offset
        self._rotated_at = None
        if self._head_len < HEAD_BYTES and offset > self._head_len:
            assert self._fd is not None
            self._head_len = min(HEAD_BYTES, offset)
            self._head_sha256 = _sha256(os.pread(self._fd, self._head_len, 0))

    def _skip_overlong(self, start: int) -> LogRead:
        """Skip a line longer than any record, once its newline has been written."""
        assert self._fd is not None
        at = start + MAX_LINE_BYTES + 1
        while True:
            chunk = os.pread(self._fd, SCAN_BYTES, at)
            if not chunk:
                return self._at_end(start, at - start)  # its end is not written yet
            newline = chunk.find(b"\n")
            if newline >= 0:
                end = at + newline + 1
                self._advance(end)
                skipped = Skipped(start, end - start - 1, TOO_LONG)
                return LogRead((), start, self.position, (skipped,))
            at += len(chunk)

    def _at_end(self, start: int, torn: int) -> LogRead:
        """No complete line at `start`: wait, or follow a truncation or a rotation."""
        assert self._fd is not None
        replaced = self._check_replaced()
        if replaced is not None:
            return replaced
        st = self._stat_path()
        if st is None or _identity(st) == self._identity:
            self._rotated_at = None
            return LogRead((), start, self.position)
        # The path names another file: this one was rotated. Finish it before moving on.
        size = os.fstat(self._fd).st_size
        now = self._clock()
        if self._rotated_at is None or size != self._idle_size:
            self._rotated_at, self._idle_size = now, size
        if now - self._rotated_at < self._rotate_wait_s:
            return LogRead((), start, self.position)
        skipped = (Skipped(start, torn, TORN),) if torn else ()
        old = self._identity
        self.close()
        self._open_path(0)
        logger.info(
            "%s was rotated: finished inode %d at %d bytes, now reading inode %d",
            self.path,
            old[1],
            start + torn,
            self._identity[1],
        )
        return LogRead((), start, self.position, skipped, switched=True)

    def _check_replaced(self) -> LogRead | None:
        """Restart this file at 0 if it was truncated or its first bytes changed."""
        assert self._fd is not None
        self._next_head_check = self._clock() + HEAD_CHECK_INTERVAL_S
        size = os.fstat(self._fd).st_size
        if size >= self._offset and (
            self._head_len == 0
            or _sha256(os.pread(self._fd, self._head_len, 0)) == self._head_sha256
        ):
            return None
        logger.warning(
            "%s (inode %d) was truncated or replaced in place (size %d, position %d); "
            "reading it again from its start",
            self.path,
            self._identity[1],
            size,
            self._offset,
        )
        start = self._offset
        self._offset = self._head_len = 0
        self._head_sha256 = ""
        return LogRead((), start, self.position, switched=True)

    # Opening

    def _stat_path(self) -> os.stat_result | None:
        try:
            return os.stat(self.path)
        except FileNotFoundError:
            return None

    def _size_at_path(self) -> int:
        st = self._stat_path()
        return 0 if st is None else st.st_size

    def _open(self, path: Path) -> bool:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        self.close()
        self._fd = fd
        self._identity = _identity(os.fstat(fd))
        self._offset = self._head_len = 0
        self._head_sha256 = ""
        self._rotated_at = None
        return True

    def _open_path(self, offset: int) -> bool:
        if not self._open(self.path):
            return False
        self._advance(offset)
        return True

    def _resume(self, start: LogPosition | None) -> None:
        if start is None:
            self._open_path(0)
            return
        wanted = (start.device, start.inode)
        st = self._stat_path()
        found: Path | None = self.path if st is not None and _identity(st) == wanted else None
        if found is None:
            found = self._find_rotated(wanted)
        if found is None or not self._open(found) or self._identity != wanted:
            logger.warning(
                "the file of the saved position (inode %d, %d bytes shipped) is no longer "
                "beside %s; starting the current file from its beginning (lines written to the "
                "old file after the position are not shipped)",
                start.inode,
                start.offset,
                self.path,
            )
            self._open_path(0)
            return
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        head = os.pread(self._fd, start.head_len, 0)
        if size < start.offset or _sha256(head) != (start.head_sha256 or _sha256(b"")):
            logger.warning(
                "%s (inode %d) no longer holds the lines of the saved position; reading it "
                "from its beginning",
                found,
                start.inode,
            )
            if found != self.path:
                self._open_path(0)
            return
        self._offset = start.offset
        self._head_len, self._head_sha256 = start.head_len, start.head_sha256
        if found != self.path:
            logger.info("finishing rotated log %s from byte %d first", found, start.offset)

    def _find_rotated(self, wanted: tuple[int, int]) -> Path | None:
        """The renamed file with this identity beside the log (access.log.1, -20241206...)."""
        try:
            entries = list(os.scandir(self.path.parent))
        except OSError:
            return None
        for entry in entries:
            if entry.name.startswith(self.path.name) and entry.name != self.path.name:
                try:
                    if _identity(entry.stat(follow_symlinks=False)) == wanted:
                        return Path(entry.path)
                except OSError:
                    continue
        return None
