"""An AuditLog in memory, for tests; it keeps the same contract as the real stores."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from streamer.audit.errors import StreamConflict
from streamer.audit.model import AuditEntry, StreamHead
from streamer.audit.port import check_run
from streamer.errors import StorageError


class InMemoryAuditLog:
    """AuditLog in dicts; `fail` makes every call raise StorageError (a store outage)."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[int, AuditEntry]] = {}
        self._heads: dict[str, StreamHead] = {}
        self._lock = threading.Lock()
        self.fail: str | None = None

    def _check(self) -> None:
        if self.fail is not None:
            raise StorageError(self.fail)

    def append(self, entries: Sequence[AuditEntry]) -> None:
        check_run(entries)
        with self._lock:
            self._check()
            stream = self._entries.setdefault(entries[0].stream, {})
            for entry in entries:
                if entry.seq in stream:
                    raise StreamConflict(entry.stream, entry.seq)
            stream.update((entry.seq, entry) for entry in entries)
            last = entries[-1]
            head = self._heads.get(last.stream)
            if head is None or head.seq < last.seq:
                self._heads[last.stream] = StreamHead(last.stream, last.seq, last.hash)

    def tail(self, stream: str) -> StreamHead | None:
        with self._lock:
            self._check()
            entries = self._entries.get(stream)
            if not entries:
                return None
            last = entries[max(entries)]
            return StreamHead(stream, last.seq, last.hash)

    def entries(self, stream: str, after_seq: int = 0) -> Iterator[AuditEntry]:
        with self._lock:
            self._check()
            entries = self._entries.get(stream, {})
            found = [entries[seq] for seq in sorted(entries) if seq > after_seq]
        return iter(found)

    def heads(self) -> list[StreamHead]:
        with self._lock:
            self._check()
            return [self._heads[name] for name in sorted(self._heads)]

    def streams(self) -> list[str]:
        with self._lock:
            self._check()
            return sorted(set(self._entries) | set(self._heads))

    def close(self) -> None:
        pass
