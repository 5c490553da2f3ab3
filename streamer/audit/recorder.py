"""The recorder: links events into its stream and appends them, durably, or says it could not.

`record(events)` returns once the events are in the store (True) or, when the store fails,
in the local spool (False); it raises StorageError only when both refuse, and then the
caller has not been told they are kept. So a caller that acts after `record` returns has its
entry, whatever the store did. `replay()` moves spooled events into the store, the orphaned
spools of dead processes included.

Appending: the events are linked after the stream's tail (cached after each success) and
appended as one compare-and-set. On StreamConflict (another process writes the same stream)
the recorder re-reads the tail, drops the events already there (by id: a timed-out append of
its own that did land) and links again, up to `MAX_CONFLICTS` times. Replayed events are
appended at the tail when the store is back, so a stream's order is the order entries
reached the store; each keeps the time it happened (`at_us`).

Blocking and thread-safe (one lock): the edge calls it from its audit writer's thread, the
CLI and the ingest API directly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from streamer.audit.chain import ChainKey, head_of, link
from streamer.audit.errors import StreamConflict
from streamer.audit.model import AuditEvent, StreamHead, check_stream_name
from streamer.audit.port import AuditLog
from streamer.audit.spool import AuditSpool, SpooledRecord
from streamer.errors import StorageError, StreamerError

logger = logging.getLogger(__name__)

MAX_CONFLICTS = 20  # appends lost to other writers in a row before giving up to the spool


class AuditRecorder:
    """Appends to one stream of `open_log()`'s log (opened on first use, again after a
    failure to open), spooling what the store does not take."""

    def __init__(
        self,
        open_log: Callable[[], AuditLog],
        key: ChainKey,
        stream: str,
        spool: AuditSpool | None,
    ) -> None:
        self.stream = check_stream_name(stream)
        self.key = key
        self._open_log = open_log
        self._log: AuditLog | None = None
        self._spool = spool
        self._tails: dict[str, StreamHead | None] = {}
        self._lock = threading.Lock()

    def record(self, events: Sequence[AuditEvent]) -> bool:
        """Keep `events`: True once in the store, False once in the spool instead."""
        if not events:
            return True
        with self._lock:
            linked_after: list[int | None] = [None]
            try:
                self._append(self.stream, list(events), None, linked_after)
                return True
            except StreamerError as exc:
                if self._spool is None:
                    raise
                self._spool.append(SpooledRecord(self.stream, linked_after[0], tuple(events)))
                logger.warning(
                    "audit store refused %d events (%s); spooled to %s",
                    len(events),
                    exc,
                    self._spool.path,
                )
                return False

    def has_spooled(self) -> bool:
        return self._spool is not None and self._spool.has_pending()

    def replay(self) -> int:
        """Append what the spools hold; the number of events moved. StorageError leaves the
        rest spooled."""
        if self._spool is None:
            return 0
        moved = 0
        with self._lock, self._spool.pending() as found:
            for path, records in found:
                for record in records:
                    linked: list[int | None] = [None]
                    self._append(record.stream, list(record.events), record.after_seq, linked)
                    moved += len(record.events)
                self._spool.done(path)
        if moved:
            logger.info("audit spool replayed: %d events now in the store", moved)
        return moved

    def close(self) -> None:
        with self._lock:
            if self._spool is not None:
                self._spool.close()
            if self._log is not None:
                log, self._log = self._log, None
                log.close()

    def _store(self) -> AuditLog:
        if self._log is None:
            self._log = self._open_log()
        return self._log

    def _append(
        self,
        stream: str,
        events: list[AuditEvent],
        written_after: int | None,
        linked_after: list[int | None],
    ) -> None:
        """Append `events` at the tail of `stream`; with `written_after`, first drop those an
        earlier ambiguous append wrote after that seq. `linked_after[0]` is set to the seq the
        events were last linked after (for the spool, should this fail)."""
        log = self._store()
        try:
            tail = self._tails[stream] if stream in self._tails else log.tail(stream)
            if written_after is not None:
                events = _unwritten(log, stream, written_after, events)
            for _ in range(MAX_CONFLICTS):
                if not events:
                    self._tails[stream] = tail
                    return
                linked_after[0] = tail.seq if tail is not None else 0
                entries = link(self.key, stream, tail, events)
                try:
                    log.append(entries)
                except StreamConflict:
                    before = tail.seq if tail is not None else 0
                    tail = log.tail(stream)
                    events = _unwritten(log, stream, before, events)
                    continue
                self._tails[stream] = head_of(entries[-1])
                return
        except StreamerError:
            self._tails.pop(stream, None)  # unknown after a failure: read it again next time
            raise
        self._tails.pop(stream, None)
        raise StorageError(
            f"audit stream {stream}: {MAX_CONFLICTS} appends in a row lost to other writers"
        )


def _unwritten(
    log: AuditLog, stream: str, after_seq: int, events: list[AuditEvent]
) -> list[AuditEvent]:
    """`events` less those the stream already holds after `after_seq`."""
    written = {entry.event.event_id for entry in log.entries(stream, after_seq)}
    return [event for event in events if event.event_id not in written]
