"""The AuditLog port: append-only streams of linked entries, and their checkpoints.

A stream is written by one writer at a time, but nothing trusts that: `append` is a
compare-and-set on the entries' (stream, seq) positions, all or nothing. Two writers that
linked entries after the same tail cannot both succeed; the loser gets StreamConflict and
links again after the new tail (streamer.audit.recorder). So a stream never forks and no
acknowledged entry is overwritten.

Implementations: `streamer.audit.sqlite` (the embedded session store's file),
`streamer.audit.scylla` (the session store's keyspace, migration 4), and `memory` for tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from streamer.audit.model import AuditEntry, StreamHead


class AuditLog(Protocol):
    """Where audit entries are kept."""

    def append(self, entries: Sequence[AuditEntry]) -> None:
        """Write consecutive entries of one stream and advance its checkpoint.

        StreamConflict, and nothing written, if any of their positions is taken; StorageError
        if the store failed (the entries may or may not be written).
        """
        ...

    def tail(self, stream: str) -> StreamHead | None:
        """The stream's last written entry (read past a lagging checkpoint); None if empty."""
        ...

    def entries(self, stream: str, after_seq: int = 0) -> Iterator[AuditEntry]:
        """The stream's entries with a seq above `after_seq`, in seq order.

        A row that no longer decodes raises CorruptEntry where it lies.
        """
        ...

    def heads(self) -> list[StreamHead]:
        """Every stream's checkpoint, by stream name."""
        ...

    def streams(self) -> list[str]:
        """Every stream with entries or a checkpoint, by name: what verification walks."""
        ...

    def close(self) -> None: ...


def check_run(entries: Sequence[AuditEntry]) -> None:
    """ValueError unless `entries` are a non-empty run of consecutive seqs of one stream."""
    if not entries:
        raise ValueError("append needs at least one entry")
    first = entries[0]
    for offset, entry in enumerate(entries):
        if entry.stream != first.stream or entry.seq != first.seq + offset:
            raise ValueError(
                f"append takes consecutive entries of one stream; {entry.stream}#{entry.seq}"
                f" follows {first.stream}#{first.seq + offset - 1}"
            )
