"""A local, durable spool of audit events the store did not take, until it takes them.

Layout: `<data_dir>/audit-spool/<stream>.<pid>.<random>.jsonl`, one file per recorder, held
under an exclusive `flock` while its process lives. A line is one failed append:

    {"stream": ..., "after_seq": <the seq the events were linked after, or null>,
     "events": [{event_id, at_us, action, actor, subject, details}, ...]}

`append` returns once the line is on disk (write, then fsync; a new file's directory entry
too). `pending` gives the records of this spool and of every spool whose owner has died
(its lock can be taken); `done` empties one once its records are in the store. A torn last
line (a crash mid-append) is skipped with a warning: its append had not returned, so nobody
was told the events were kept.

`after_seq` lets a replay find events an ambiguous append (a timeout) did write after all:
they are looked for by id among the entries after it, and not written twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from streamer.audit.errors import InvalidAuditEvent
from streamer.audit.model import AuditAction, AuditEvent, check_stream_name
from streamer.errors import StorageError

logger = logging.getLogger(__name__)

AUDIT_SPOOL_DIR = "audit-spool"  # under settings.data_dir
SUFFIX = ".jsonl"


@dataclass(frozen=True)
class SpooledRecord:
    stream: str
    after_seq: int | None
    events: tuple[AuditEvent, ...]


def encode_record(record: SpooledRecord) -> bytes:
    doc = {
        "stream": record.stream,
        "after_seq": record.after_seq,
        "events": [
            {
                "event_id": e.event_id,
                "at_us": e.at_us,
                "action": e.action.value,
                "actor": e.actor,
                "subject": e.subject,
                "details": e.details,
            }
            for e in record.events
        ],
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def decode_record(line: bytes) -> SpooledRecord:
    """InvalidAuditEvent (or ValueError) if the line is not a whole record."""
    doc: dict[str, Any] = json.loads(line)
    events = tuple(
        AuditEvent(
            event_id=e["event_id"],
            at_us=e["at_us"],
            action=AuditAction(e["action"]),
            actor=e["actor"],
            subject=e["subject"],
            details=e["details"],
        )
        for e in doc["events"]
    )
    after = doc["after_seq"]
    return SpooledRecord(
        check_stream_name(doc["stream"]), None if after is None else int(after), events
    )


class AuditSpool:
    """This process's spool file in `directory`, and the orphaned ones beside it."""

    def __init__(self, directory: Path, stream: str) -> None:
        self.directory = directory
        self.path = directory / f"{stream}.{os.getpid()}.{secrets.token_hex(4)}{SUFFIX}"
        self._file: IO[bytes] | None = None  # created on the first append only

    def append(self, record: SpooledRecord) -> None:
        """Write the record and fsync it; StorageError if the disk refuses."""
        try:
            if self._file is None:
                self.directory.mkdir(parents=True, exist_ok=True)
                handle = open(self.path, "ab")  # noqa: SIM115 - held open for this process
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._file = handle
                _fsync_dir(self.directory)
            self._file.write(encode_record(record))
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise StorageError(f"cannot spool audit events to {self.path}: {exc}") from exc

    def has_pending(self) -> bool:
        """Whether this spool holds records, or any non-empty spool file lies beside it."""
        if self._file is not None and self._file.tell() > 0:
            return True
        with contextlib.suppress(OSError):
            return any(_holds_records(path) for path in self._orphans())
        return False

    @contextlib.contextmanager
    def pending(self) -> Iterator[list[tuple[Path, list[SpooledRecord]]]]:
        """The records of this spool, then of each orphan (locked while the block runs)."""
        held: list[IO[bytes]] = []
        found: list[tuple[Path, list[SpooledRecord]]] = []
        try:
            if self._file is not None and self._file.tell() > 0:
                found.append((self.path, _read_records(self.path)))
            for path in sorted(self._orphans()):
                handle = _lock_orphan(path)
                if handle is not None:
                    held.append(handle)
                    found.append((path, _read_records(path)))
            yield found
        finally:
            for handle in held:
                handle.close()

    def done(self, path: Path) -> None:
        """Every record of `path` is in the store: empty this spool, or delete the orphan."""
        try:
            if path == self.path and self._file is not None:
                self._file.truncate(0)
                self._file.seek(0)
                os.fsync(self._file.fileno())
            else:
                path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot clear the audit spool {path}: {exc}") from exc

    def _orphans(self) -> list[Path]:
        try:
            return [p for p in self.directory.iterdir() if p.suffix == SUFFIX and p != self.path]
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StorageError(f"cannot list the audit spool {self.directory}: {exc}") from exc

    def close(self) -> None:
        """Release the file; an empty one is deleted, a full one waits for another process."""
        handle, self._file = self._file, None
        if handle is None:
            return
        with contextlib.suppress(OSError):
            if handle.tell() == 0:
                self.path.unlink(missing_ok=True)
        handle.close()


def _holds_records(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except FileNotFoundError:
        return False


def _lock_orphan(path: Path) -> IO[bytes] | None:
    """The orphan opened and locked, or None if its owner lives or another took it first."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the caller
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    if os.fstat(handle.fileno()).st_nlink == 0:  # replayed and deleted by another meanwhile
        handle.close()
        return None
    return handle


def _read_records(path: Path) -> list[SpooledRecord]:
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError as exc:
        raise StorageError(f"cannot read the audit spool {path}: {exc}") from exc
    records = []
    for number, line in enumerate(lines, 1):
        if not line:
            continue
        try:
            records.append(decode_record(line))
        except (InvalidAuditEvent, ValueError, KeyError, TypeError) as exc:
            torn = number == len(lines)  # no newline after it: the append never returned
            (logger.warning if torn else logger.error)(
                "audit spool %s line %d is not a record (%s); skipped%s",
                path,
                number,
                exc,
                " (a torn last write)" if torn else "",
            )
    return records


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
