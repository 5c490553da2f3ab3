"""The audit log in the session store's CQL keyspace (migration 4 of streamer.cql.schema).

    audit_entries  PRIMARY KEY ((stream, epoch), seq)
        A stream's entries, `AUDIT_EPOCH_ENTRIES` (50 000) to a partition: epoch = (seq - 1)
        // 50 000. An entry is ~400 bytes (a key grant with a few key ids), so a partition
        stays near 20 MB however long its stream runs. No TTL: the log is kept until deleted
        on purpose.
    audit_heads    PRIMARY KEY ((scope), stream)
        Every stream's checkpoint (seq, hash) in one partition ('all'): one row per writer
        stream (edge workers, ingest APIs, CLI hosts), thousands at most, ~150 bytes each.

An append is a conditional batch per partition: `INSERT ... IF NOT EXISTS` for each entry,
one Paxos round, all applied or none. A run that crosses an epoch is two batches; should the
second conflict, the first stays, and the recorder, re-reading the tail, finds its events
there by id. Then the checkpoint advances with a plain write whose timestamp is its seq, so
of two writes the higher seq wins without a read; a stream's first append registers its
checkpoint at seq 0 before any entry, so a stream with entries always has one. The checkpoint
may lag its entries (a writer killed between the two writes); verification allows that, and
`tail` reads past it at LOCAL_SERIAL, seeing every applied conditional write.

Verification lists streams from both tables (`SELECT DISTINCT` over the entries' partition
keys is a full scan: it is for `streamer audit verify`, not for a request path), so a stream
whose checkpoint was deleted is walked and reported, not skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import groupby
from typing import Any

from streamer.audit.errors import StreamConflict
from streamer.audit.model import GENESIS_HASH, AuditEntry, StreamHead
from streamer.audit.port import check_run
from streamer.audit.rows import COLUMNS, from_row, to_row
from streamer.cql.connection import Cql, CqlSession
from streamer.cql.schema import open_migrated_session
from streamer.settings import Settings

AUDIT_EPOCH_ENTRIES = 50_000  # entries per partition; changing it strands entries: a migration
READ_PAGE_ROWS = 1000
HEAD_SCOPE = "all"

_COLUMNS = ", ".join(COLUMNS)
_INSERT = Cql(
    f"INSERT INTO audit_entries (epoch, {_COLUMNS})"
    f" VALUES (?, {', '.join('?' * len(COLUMNS))}) IF NOT EXISTS",
    idempotent=False,
)
_WRITE_HEAD = Cql(
    "UPDATE audit_heads USING TIMESTAMP ? SET seq = ?, hash = ? WHERE scope = ? AND stream = ?",
    idempotent=True,  # the timestamp makes a repeat the same write
)
_READ_HEAD = Cql(
    "SELECT seq, hash FROM audit_heads WHERE scope = ? AND stream = ?", idempotent=True
)
_HEADS = Cql("SELECT stream, seq, hash FROM audit_heads WHERE scope = ?", idempotent=True)
_LAST_IN_EPOCH = Cql(
    "SELECT seq, hash FROM audit_entries WHERE stream = ? AND epoch = ? AND seq > ?"
    " ORDER BY seq DESC LIMIT 1",
    idempotent=True,
    consistency="LOCAL_SERIAL",  # an applied conditional write is seen, even one in flight
)
_PAGE = Cql(
    f"SELECT {_COLUMNS} FROM audit_entries WHERE stream = ? AND epoch = ? AND seq > ?"
    " ORDER BY seq LIMIT ?",
    idempotent=True,
)
_EPOCHS = Cql("SELECT DISTINCT stream, epoch FROM audit_entries", idempotent=True)


def epoch_of(seq: int) -> int:
    return (seq - 1) // AUDIT_EPOCH_ENTRIES


def _last_seq_of(epoch: int) -> int:
    return (epoch + 1) * AUDIT_EPOCH_ENTRIES


class ScyllaAuditLog:
    """AuditLog in a CQL keyspace shared by every edge, ingest API and operator."""

    def __init__(self, session: CqlSession, *, owns_session: bool = False) -> None:
        if session.keyspace is None:
            raise ValueError(f"{session!r} has no keyspace; open it with use_keyspace=True")
        self.session = session
        self._owns_session = owns_session

    @classmethod
    def from_settings(cls, settings: Settings) -> ScyllaAuditLog:
        """Connect; ConfigError saying to run `streamer db migrate` if the schema is behind."""
        return cls(open_migrated_session(settings), owns_session=True)

    def __repr__(self) -> str:
        return f"ScyllaAuditLog({self.session!r})"

    def append(self, entries: Sequence[AuditEntry]) -> None:
        check_run(entries)
        stream = entries[0].stream
        action = f"append {len(entries)} entries to audit stream {stream}"
        if entries[0].seq == 1:  # register the stream's checkpoint before its first entry
            self._write_head(StreamHead(stream, 0, GENESIS_HASH), action)
        for epoch, run in groupby(entries, key=lambda entry: epoch_of(entry.seq)):
            part = list(run)
            applied, rows = self.session.execute_conditional_batch(
                [(_INSERT, (epoch, *to_row(entry))) for entry in part], action=action
            )
            if not applied:
                taken = min((row["seq"] for row in rows if row.get("seq")), default=part[0].seq)
                raise StreamConflict(stream, taken)
        last = entries[-1]
        self._write_head(StreamHead(stream, last.seq, last.hash), action)

    def _write_head(self, head: StreamHead, action: str) -> None:
        self.session.execute(
            _WRITE_HEAD,
            (head.seq + 1, head.seq, head.hash, HEAD_SCOPE, head.stream),
            action=action,
        )

    def tail(self, stream: str) -> StreamHead | None:
        action = f"read the tail of audit stream {stream}"
        row = self.session.execute(_READ_HEAD, (HEAD_SCOPE, stream), action=action).one()
        last = StreamHead(stream, row["seq"], row["hash"]) if row is not None else None
        seq = last.seq if last is not None else 0
        epoch = epoch_of(seq + 1)
        while True:  # past a lagging checkpoint, epoch by epoch
            found = self.session.execute(_LAST_IN_EPOCH, (stream, epoch, seq), action=action).one()
            if found is None:
                break
            last = StreamHead(stream, found["seq"], found["hash"])
            seq = last.seq
            if seq < _last_seq_of(epoch):
                break
            epoch += 1
        return last if last is not None and last.seq > 0 else None

    def entries(self, stream: str, after_seq: int = 0) -> Iterator[AuditEntry]:
        action = f"read audit stream {stream}"
        epoch = epoch_of(after_seq + 1)
        while True:  # a partition ends the walk unless it was full to its last seq
            rows = self.session.execute(
                _PAGE, (stream, epoch, after_seq, READ_PAGE_ROWS), action=action
            ).all()
            for row in rows:
                yield from_row(row)
            if rows:
                after_seq = rows[-1]["seq"]
            if len(rows) == READ_PAGE_ROWS:
                continue
            if after_seq != _last_seq_of(epoch):
                return
            epoch += 1

    def heads(self) -> list[StreamHead]:
        rows = self.session.execute(
            _HEADS, (HEAD_SCOPE,), action="read the audit checkpoints"
        ).all()
        return sorted(
            (StreamHead(r["stream"], r["seq"], r["hash"]) for r in rows), key=lambda h: h.stream
        )

    def streams(self) -> list[str]:
        rows: list[dict[str, Any]] = self.session.execute(
            _EPOCHS, action="list the audit streams"
        ).all()
        return sorted({row["stream"] for row in rows} | {head.stream for head in self.heads()})

    def close(self) -> None:
        if self._owns_session:
            self.session.close()
