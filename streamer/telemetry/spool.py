"""A durable local spool of telemetry batches, for the time the session store is slow or down.

Storage-agnostic: it keeps sequences of telemetry items on local disk and gives them back in
the order they came; the edge's telemetry path decides when to spool and when to replay.

Layout: `<data_dir>/spool/` holds append-only segment files `<number>.spool`, numbered in
order, each at most about `SEGMENT_BYTES`, and a `cursor` naming how far replay has come.

    segment  = MAGIC (8 bytes: "TSPOOL", 0, format version 1), then records
    record   = length (u32, big-endian) | crc32 (u32, of the length bytes and the payload)
               | payload: the batch's items (streamer.telemetry.codec)

Guarantees:

- `append` returns once the record is on disk (fsync). Appends that arrive while one fsync
  runs share the next (group commit); a new segment is fsync'd, with its directory entry,
  before it takes records. A record is one writer batch (up to 500 items).
- The spool holds at most `max_bytes` (`MAX_SPOOL_BYTES`, 256 MiB: some five million events
  compressed); beyond that `append` raises SpoolFull and takes nothing. `alarm` turns on at
  `ALARM_RATIO` (80 %) with a warning in the log, and off below `CLEAR_RATIO`.
- `peek` returns the oldest record not yet acknowledged; `ack` moves past it. Segments are
  deleted once replayed, and every file once the spool is empty.
- One process per directory: each edge worker spools into its own (`worker_spool_dir`).
  Before workers start, `adopt_orphan_spools` hands every spool no worker will open (left by
  a run with more workers, or from before per-worker directories) to one that will.
- Opening recovers what a previous process left: records after the cursor are replayed first.
  A torn tail (a crash mid-append) fails its length or CRC check and is truncated away, with
  a warning. A bad record anywhere else is corruption: the segment is cut there, with an
  error naming the bytes lost. The cursor is written without fsync: after a crash a few
  records may be replayed twice, which the store's idempotent writes make harmless.

Over 400 lines: one class whose appends, group commit, rotation, replay and recovery share a
lock and the open segment's state, and whose guarantees above are kept only all together.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import threading
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from streamer.errors import StorageError
from streamer.telemetry.codec import TelemetryDecodeError, decode_items, encode_items
from streamer.telemetry.model import TelemetryItem

logger = logging.getLogger(__name__)

SPOOL_DIR = "spool"  # under settings.data_dir; one subdirectory per edge worker
MAX_SPOOL_BYTES = 256 * 1024**2  # ~5 M events compressed: hours of a busy edge's telemetry
SEGMENT_BYTES = 16 * 1024**2  # replayed segments are deleted whole: at most this much lingers
MAX_RECORD_BYTES = 8 * 1024**2  # a 500-item batch compresses to ~30 KB; more is a bad length
ALARM_RATIO = 0.8
CLEAR_RATIO = 0.7  # below this the alarm clears (hysteresis: no flapping at the threshold)
MAGIC = b"TSPOOL\x00\x01"
_RECORD = struct.Struct(">II")  # length, crc32


class SpoolFull(StorageError):
    """The spool holds `max_bytes`; nothing more is taken until replay frees room."""


@dataclass(frozen=True)
class SpooledBatch:
    """The items of one record and where the record lies (for `ack`)."""

    items: tuple[TelemetryItem, ...]
    segment: int
    start: int
    end: int


def frame(payload: bytes) -> bytes:
    """A record: length, checksum, payload."""
    length = len(payload)
    crc = zlib.crc32(payload, zlib.crc32(length.to_bytes(4, "big")))
    return _RECORD.pack(length, crc) + payload


@dataclass
class _Segment:
    size: int  # bytes on disk
    unread: int  # records not yet acknowledged


class TelemetrySpool:
    """Append-only, checksummed segment files of telemetry batches, replayed in order.

    Thread-safe. Opening (recovery) reads every segment: call `open()` from a thread before
    use; the other methods open on first use too.
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_bytes: int = MAX_SPOOL_BYTES,
        segment_bytes: int | None = None,
        fsync: Callable[[int], None] = os.fsync,
    ) -> None:
        """`segment_bytes` defaults to SEGMENT_BYTES, or `max_bytes` if that is less."""
        segment_bytes = min(SEGMENT_BYTES, max_bytes) if segment_bytes is None else segment_bytes
        if not 0 < segment_bytes <= max_bytes:
            raise ValueError(
                f"need 0 < segment_bytes <= max_bytes, got {segment_bytes} and {max_bytes}"
            )
        self.directory = directory
        self.max_bytes = max_bytes
        self._segment_bytes = segment_bytes
        self._fsync = fsync
        self._lock = threading.Lock()
        self._opened = False
        self._closed = False
        self._segments: dict[int, _Segment] = {}  # by number, oldest first
        self._next_number = 1
        self._write: tuple[int, int] | None = None  # (segment number, fd) taking appends
        self._reader: tuple[int, int] | None = None  # (segment number, fd) being replayed
        self._read_at: tuple[int, int] | None = None  # (segment, offset) of the oldest record
        self._pending = 0
        self._bytes = 0
        # Group commit: appends count records written; one fsync makes all of them durable.
        self._sync = threading.Condition()
        self._written = 0
        self._synced = 0
        self._syncing = False
        self.fsyncs = 0  # group commits: fsyncs that made appended records durable
        self.alarm = False
        self.lost_bytes = 0  # cut away as torn or corrupt
        self.lost_records = 0  # complete records that did not decode

    def __repr__(self) -> str:
        return f"TelemetrySpool({str(self.directory)!r})"

    @property
    def bytes_on_disk(self) -> int:
        return self._bytes

    @property
    def pending(self) -> int:
        """Records appended and not yet acknowledged."""
        return self._pending

    def is_empty(self) -> bool:
        with self._lock:
            self._open_locked()
            return self._pending == 0

    def open(self) -> None:
        """Recover the segments a previous process left (blocking: reads them all)."""
        with self._lock:
            self._open_locked()

    def append(self, items: Sequence[TelemetryItem]) -> None:
        """Keep `items` as one record, durable when this returns. Raises SpoolFull, StorageError."""
        record = frame(encode_items(items))
        if len(record) - _RECORD.size > MAX_RECORD_BYTES:
            raise StorageError(
                f"a batch of {len(items)} telemetry items encodes to {len(record)} bytes, over"
                f" the spool's record limit of {MAX_RECORD_BYTES}"
            )
        with self._lock:
            self._open_locked()
            rotate = self._write is None or (
                self._segments[self._write[0]].size + len(record) > self._segment_bytes
                and self._segments[self._write[0]].size > len(MAGIC)
            )
            needed = len(record) + (len(MAGIC) if rotate else 0)
            if self._bytes + needed > self.max_bytes:
                raise SpoolFull(
                    f"the telemetry spool {self.directory} holds {self._bytes} of"
                    f" {self.max_bytes} bytes and cannot take a record of {len(record)}"
                )
            try:
                if rotate:
                    self._rotate_locked()
                assert self._write is not None
                number, fd = self._write
                _write_all(fd, record)
            except OSError as exc:
                raise StorageError(
                    f"cannot append to the telemetry spool {self.directory}: {exc}"
                ) from exc
            segment = self._segments[number]
            segment.size += len(record)
            segment.unread += 1
            if self._read_at is None:
                self._read_at = (number, segment.size - len(record))
            self._pending += 1
            self._bytes += len(record)
            self._written += 1
            mine = self._written
            self._check_alarm_locked()
        self._wait_durable(mine)

    def peek(self) -> SpooledBatch | None:
        """The oldest record not yet acknowledged, or None. Skips (and counts) bad records."""
        with self._lock:
            self._open_locked()
            while self._pending and self._read_at is not None:
                number, offset = self._read_at
                segment = self._segments[number]
                if offset >= segment.size:
                    self._advance_locked(number)
                    continue
                try:
                    batch = self._read_record_locked(number, offset, segment)
                except OSError as exc:
                    raise StorageError(
                        f"cannot read the telemetry spool {self.directory}: {exc}"
                    ) from exc
                if batch is not None:
                    return batch
            return None

    def ack(self, batch: SpooledBatch) -> None:
        """Move past `batch`, the oldest record (as `peek` returned it)."""
        with self._lock:
            self._open_locked()
            if self._read_at != (batch.segment, batch.start):
                raise ValueError(
                    f"acknowledged the record at {batch.segment}:{batch.start}, but the oldest"
                    f" is at {self._read_at}"
                )
            self._consume_locked(batch.segment, batch.end)
            self._check_alarm_locked()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._close_files_locked()

    # Internals (the caller holds self._lock)

    def _open_locked(self) -> None:
        if self._closed:
            raise StorageError(f"{self!r} is closed")
        if self._opened:
            return
        try:
            self._recover_locked()
        except OSError as exc:
            self._close_files_locked()
            raise StorageError(f"cannot open the telemetry spool {self.directory}: {exc}") from exc
        self._opened = True
        self._check_alarm_locked()

    def _recover_locked(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for leftover in self.directory.glob("*.tmp"):
            leftover.unlink()
        numbers = sorted(
            int(path.stem) for path in self.directory.glob("*.spool") if path.stem.isdigit()
        )
        cursor = self._load_cursor()
        if cursor is not None and cursor[0] not in numbers:
            cursor = None  # names no segment: replay them all (the store takes repeats)
        for number in numbers:
            self._next_number = max(self._next_number, number + 1)
            if cursor is not None and number < cursor[0]:
                self._path(number).unlink()  # replayed before the last process stopped
                continue
            start = cursor[1] if cursor is not None and number == cursor[0] else len(MAGIC)
            recovered = self._recover_segment(number, start, last=number == numbers[-1])
            if recovered is None:
                continue
            size, unread, first = recovered
            if not unread and number != numbers[-1]:
                self._path(number).unlink()  # replayed to its end, or nothing in it survived
                continue
            self._segments[number] = _Segment(size, unread)
            self._bytes += size
            self._pending += unread
            if self._read_at is None and unread:
                self._read_at = (number, first)
        if self._pending == 0:
            self._reset_locked()
            return
        last = max(self._segments)
        if self._segments[last].size < self._segment_bytes:
            fd = os.open(self._path(last), os.O_WRONLY | os.O_APPEND)
            self._write = (last, fd)
        if self._read_at is not None:
            self._save_cursor()

    def _recover_segment(self, number: int, start: int, last: bool) -> tuple[int, int, int] | None:
        """(size, records at or after `start`, offset of the first of them), after cutting
        away a bad tail; None if the file was removed."""
        path = self._path(number)
        data = path.read_bytes()
        if data[: len(MAGIC)] != MAGIC:
            if len(data) < len(MAGIC) and MAGIC.startswith(data):
                path.unlink()  # created, then the process died before the header was whole
                return None
            path.rename(path.with_suffix(".corrupt"))
            self.lost_bytes += len(data)
            logger.error(
                "telemetry spool segment %s does not start with the spool's header; moved it"
                " aside as %s (%d bytes not replayed)",
                path,
                path.with_suffix(".corrupt").name,
                len(data),
            )
            return None
        offset, unread, first = len(MAGIC), 0, -1
        while offset + _RECORD.size <= len(data):
            length, crc = _RECORD.unpack_from(data, offset)
            end = offset + _RECORD.size + length
            if length > MAX_RECORD_BYTES or end > len(data):
                break
            payload = data[offset + _RECORD.size : end]
            if zlib.crc32(payload, zlib.crc32(data[offset : offset + 4])) != crc:
                break
            if offset >= start:
                unread += 1
                first = offset if first < 0 else first
            offset = end
        if offset < len(data):
            cut = len(data) - offset
            self.lost_bytes += cut
            if last:
                logger.warning(
                    "telemetry spool %s ends in %d bytes of a record that was not finished"
                    " (a torn write); truncated at offset %d",
                    path,
                    cut,
                    offset,
                )
            else:
                logger.error(
                    "telemetry spool %s is corrupt at offset %d: %d bytes after it cannot be"
                    " replayed and were cut",
                    path,
                    offset,
                    cut,
                )
            with path.open("r+b") as handle:
                handle.truncate(offset)
                os.fsync(handle.fileno())
        return offset, unread, first if first >= 0 else offset

    def _read_record_locked(
        self, number: int, offset: int, segment: _Segment
    ) -> SpooledBatch | None:
        """The record at `offset`, or None after skipping a bad one (counted, logged)."""
        if self._reader is None or self._reader[0] != number:
            if self._reader is not None:
                os.close(self._reader[1])
                self._reader = None
            self._reader = (number, os.open(self._path(number), os.O_RDONLY))
        fd = self._reader[1]
        head = os.pread(fd, _RECORD.size, offset)
        length, crc = _RECORD.unpack(head) if len(head) == _RECORD.size else (-1, 0)
        payload = os.pread(fd, length, offset + _RECORD.size) if length >= 0 else b""
        end = offset + _RECORD.size + length
        if (
            length < 0
            or length > MAX_RECORD_BYTES
            or len(payload) != length
            or zlib.crc32(payload, zlib.crc32(head[:4])) != crc
        ):
            # Recovery checked every record, so this is the disk failing under us: give up
            # the rest of the segment rather than guess where the next record starts.
            cut = segment.size - offset
            logger.error(
                "telemetry spool %s is corrupt at offset %d; %d records (%d bytes) after it"
                " are lost",
                self._path(number),
                offset,
                segment.unread,
                cut,
            )
            self.lost_bytes += cut
            self._pending -= segment.unread
            segment.unread = 0
            if self._write is not None and self._write[0] == number:
                os.close(self._write[1])
                self._write = None  # the next append starts a new segment
            self._read_at = (number, segment.size)
            return None
        try:
            items = decode_items(payload)
        except TelemetryDecodeError as exc:
            logger.error(
                "telemetry spool record at %s:%d (%d bytes) is skipped: %s",
                self._path(number),
                offset,
                length,
                exc,
            )
            self.lost_records += 1
            self._consume_locked(number, end)
            return None
        return SpooledBatch(items, number, offset, end)

    def _consume_locked(self, number: int, end: int) -> None:
        segment = self._segments[number]
        segment.unread -= 1
        self._pending -= 1
        self._read_at = (number, end)
        if self._pending == 0:
            self._reset_locked()
        elif end >= segment.size and (self._write is None or self._write[0] != number):
            self._advance_locked(number)
        else:
            self._save_cursor()

    def _advance_locked(self, number: int) -> None:
        """The segment `number` is replayed: delete it and read the next."""
        if self._reader is not None and self._reader[0] == number:
            os.close(self._reader[1])
            self._reader = None
        if self._write is not None and self._write[0] == number:
            os.close(self._write[1])
            self._write = None
        self._bytes -= self._segments.pop(number).size
        self._path(number).unlink(missing_ok=True)
        following = next(iter(self._segments), None)
        if following is None:
            self._reset_locked()
            return
        self._read_at = (following, len(MAGIC))
        self._save_cursor()

    def _reset_locked(self) -> None:
        """Nothing is pending: remove every file; the next append starts a new segment."""
        self._close_files_locked()
        for number in list(self._segments):
            self._path(number).unlink(missing_ok=True)
        self._segments.clear()
        (self.directory / "cursor").unlink(missing_ok=True)
        self._bytes = 0
        self._read_at = None

    def _rotate_locked(self) -> None:
        """Start a new segment; the current one is fsync'd first (its records stay durable)."""
        if self._write is not None:
            self._fsync(self._write[1])
            os.close(self._write[1])
            self._write = None
            with self._sync:
                self._synced = self._written
        number = self._next_number
        self._next_number += 1
        fd = os.open(self._path(number), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        self._write = (number, fd)
        _write_all(fd, MAGIC)
        self._fsync(fd)
        _fsync_directory(self.directory)
        self._segments[number] = _Segment(len(MAGIC), 0)
        self._bytes += len(MAGIC)

    def _wait_durable(self, record: int) -> None:
        """Return once record number `record` is on disk; the first waiter fsyncs for all."""
        while True:
            with self._sync:
                while self._synced < record and self._syncing:
                    self._sync.wait()
                if self._synced >= record:
                    return
                self._syncing = True
            synced = False
            try:
                with self._lock:
                    target = self._written
                    fd = os.dup(self._write[1]) if self._write is not None else None
                if fd is not None:
                    try:
                        self._fsync(fd)
                        self.fsyncs += 1
                    finally:
                        os.close(fd)
                synced = True
            except OSError as exc:
                raise StorageError(
                    f"cannot fsync the telemetry spool {self.directory}: {exc}"
                ) from exc
            finally:
                with self._sync:
                    self._syncing = False
                    if synced:
                        self._synced = max(self._synced, target)
                    self._sync.notify_all()

    def _check_alarm_locked(self) -> None:
        ratio = self._bytes / self.max_bytes
        if not self.alarm and ratio >= ALARM_RATIO:
            self.alarm = True
            logger.warning(
                "telemetry spool %s is %.0f%% full (%d of %d bytes): the session store has been"
                " refusing writes; when full, the events API answers 429",
                self.directory,
                100 * ratio,
                self._bytes,
                self.max_bytes,
            )
        elif self.alarm and ratio < CLEAR_RATIO:
            self.alarm = False
            logger.info("telemetry spool %s is down to %.0f%% full", self.directory, 100 * ratio)

    def _close_files_locked(self) -> None:
        for handle in (self._write, self._reader):
            if handle is not None:
                os.close(handle[1])
        self._write = self._reader = None

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:016d}.spool"

    def _load_cursor(self) -> tuple[int, int] | None:
        try:
            number, offset = (self.directory / "cursor").read_text().split()
            return int(number), max(int(offset), len(MAGIC))
        except (OSError, ValueError):
            return None  # none, or torn by a crash: replay from the oldest segment's start

    def _save_cursor(self) -> None:
        if self._read_at is None:
            return
        temporary = self.directory / "cursor.tmp"
        temporary.write_text(f"{self._read_at[0]} {self._read_at[1]}\n")
        os.replace(temporary, self.directory / "cursor")


def worker_spool_dir(spool_root: Path, worker: int) -> Path:
    """The spool directory of edge worker `worker` (0 for a single-process edge)."""
    return spool_root / f"worker-{worker}"


def adopt_orphan_spools(spool_root: Path, workers: int) -> int:
    """Move the segments of spools no worker of `workers` opens into one that does; call it
    before any worker opens its spool. Returns the number of segments moved.

    Orphans are `worker-N` directories with N >= `workers` (handed to worker N % workers) and
    segments directly in `spool_root` (the layout before per-worker directories; to worker 0).
    Moved segments are numbered after the adopter's own, whole: records an orphan's cursor had
    already passed in its current segment are replayed again, which the store's idempotent
    writes make harmless; segments wholly before its cursor were replayed and are deleted.
    """
    if not spool_root.is_dir():
        return 0
    orphans: list[tuple[Path, int]] = [(spool_root, 0)]
    for path in spool_root.glob("worker-*"):
        index = path.name.removeprefix("worker-")
        if path.is_dir() and index.isdigit() and int(index) >= workers:
            orphans.append((path, int(index) % workers))
    moved = 0
    for orphan, adopter in orphans:
        moved += _adopt(orphan, worker_spool_dir(spool_root, adopter))
    return moved


def _adopt(orphan: Path, into: Path) -> int:
    segments = sorted(
        (int(path.stem), path) for path in orphan.glob("*.spool") if path.stem.isdigit()
    )
    if not segments:
        return 0
    try:
        cursor_number, _ = (orphan / "cursor").read_text().split()
        replayed_before = int(cursor_number)
    except (OSError, ValueError):
        replayed_before = 0
    into.mkdir(parents=True, exist_ok=True)
    taken = [int(path.stem) for path in into.glob("*.spool") if path.stem.isdigit()]
    next_number = max(taken, default=0) + 1
    cursor_found = any(number == replayed_before for number, _ in segments)
    moved = 0
    for number, path in segments:
        if cursor_found and number < replayed_before:
            path.unlink()  # replayed whole before that process stopped
            continue
        path.rename(into / f"{next_number:016d}.spool")
        next_number += 1
        moved += 1
    (orphan / "cursor").unlink(missing_ok=True)
    if moved:
        _fsync_directory(into)
        logger.warning(
            "telemetry spool %s had %d segment(s) no worker would replay; moved them to %s",
            orphan,
            moved,
            into,
        )
    if orphan != into.parent:
        with contextlib.suppress(OSError):  # not empty: something (a .corrupt file) stays
            orphan.rmdir()
    return moved


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
