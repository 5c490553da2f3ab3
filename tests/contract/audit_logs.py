"""The audit logs under contract, and how a test tampers with each one's rows directly.

Adding a store is one line in `AUDIT_LOGS` and a branch in each tampering function.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streamer.audit.chain import ChainKey
from streamer.audit.events import new_event
from streamer.audit.memory import InMemoryAuditLog
from streamer.audit.model import AuditAction, AuditEvent
from streamer.audit.port import AuditLog
from streamer.audit.rows import COLUMNS, to_row
from streamer.audit.scylla import ScyllaAuditLog, epoch_of
from streamer.audit.sqlite import SQLiteAuditLog
from streamer.cql.connection import Cql
from streamer.errors import StorageError
from tests.backends.cql_fixtures import shared_test_keyspace
from tests.backends.services import backend_params

AUDIT_TABLES = ("audit_entries", "audit_heads")
FRESH_MARK = ".scylla-audit-tables-emptied"
KEY = ChainKey(b"k" * 32)
OTHER_KEY = ChainKey(b"o" * 32)
T0 = 1_700_000_000.0

_memory: dict[Path, InMemoryAuditLog] = {}


def _memory_log(tmp: Path) -> AuditLog:
    return _memory.setdefault(tmp, InMemoryAuditLog())


def open_test_scylla_audit_log(tmp: Path) -> AuditLog:
    """A log over this session's keyspace, emptied on the test's first open only."""
    shared = shared_test_keyspace()
    mark = tmp / FRESH_MARK
    if not mark.exists():
        shared.truncate(AUDIT_TABLES)
        mark.touch()
    return ScyllaAuditLog(shared.session)


# name -> open the log kept in the test's directory (opening twice reaches the same data)
AUDIT_LOGS: dict[str, Callable[[Path], AuditLog]] = {
    "memory": _memory_log,
    "sqlite": lambda tmp: SQLiteAuditLog(tmp / "sessions.sqlite3"),
    "scylla": open_test_scylla_audit_log,
}
OpenLog = Callable[[], AuditLog]


@pytest.fixture(params=backend_params(AUDIT_LOGS))
def open_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenLog]:
    opened: list[AuditLog] = []

    def open_() -> AuditLog:
        log = AUDIT_LOGS[request.param](tmp_path)
        opened.append(log)
        return log

    yield open_
    for log in opened:
        with contextlib.suppress(StorageError):
            log.close()
    _memory.pop(tmp_path, None)


@pytest.fixture
def audit_log(open_log: OpenLog) -> AuditLog:
    return open_log()


def event(
    n: int = 0, action: AuditAction = AuditAction.KEY_GRANTED, **details: object
) -> AuditEvent:
    return new_event(action, f"listener:u{n}", f"session:s{n}", T0 + n, n=n, **details)


# Tampering, as someone with write access to the store would.


def sql(log: AuditLog, statement: str, *params: object) -> None:
    assert isinstance(log, SQLiteAuditLog), log
    with contextlib.closing(sqlite3.connect(log.path)) as db, db:
        db.execute(statement, params)


def cql(log: AuditLog, statement: str, *params: object) -> None:
    assert isinstance(log, ScyllaAuditLog), log
    log.session.execute(Cql(statement, idempotent=True), params, action="tamper")


def edit_actor(log: AuditLog, stream: str, seq: int, actor: str) -> None:
    if isinstance(log, SQLiteAuditLog):
        sql(
            log,
            "UPDATE audit_entries SET actor = ? WHERE stream = ? AND seq = ?",
            actor,
            stream,
            seq,
        )
    else:
        cql(
            log,
            "UPDATE audit_entries SET actor = ? WHERE stream = ? AND epoch = ? AND seq = ?",
            actor,
            stream,
            epoch_of(seq),
            seq,
        )


def edit_action(log: AuditLog, stream: str, seq: int, action: str) -> None:
    if isinstance(log, SQLiteAuditLog):
        sql(
            log,
            "UPDATE audit_entries SET action = ? WHERE stream = ? AND seq = ?",
            action,
            stream,
            seq,
        )
    else:
        cql(
            log,
            "UPDATE audit_entries SET action = ? WHERE stream = ? AND epoch = ? AND seq = ?",
            action,
            stream,
            epoch_of(seq),
            seq,
        )


def delete_entry(log: AuditLog, stream: str, seq: int) -> None:
    if isinstance(log, SQLiteAuditLog):
        sql(log, "DELETE FROM audit_entries WHERE stream = ? AND seq = ?", stream, seq)
    else:
        cql(
            log,
            "DELETE FROM audit_entries WHERE stream = ? AND epoch = ? AND seq = ?",
            stream,
            epoch_of(seq),
            seq,
        )


def delete_head(log: AuditLog, stream: str) -> None:
    if isinstance(log, SQLiteAuditLog):
        sql(log, "DELETE FROM audit_heads WHERE stream = ?", stream)
    else:
        cql(log, "DELETE FROM audit_heads WHERE scope = 'all' AND stream = ?", stream)


def set_head(log: AuditLog, stream: str, seq: int, digest: str) -> None:
    if isinstance(log, SQLiteAuditLog):
        sql(log, "UPDATE audit_heads SET seq = ?, hash = ? WHERE stream = ?", seq, digest, stream)
    else:
        cql(
            log,
            "UPDATE audit_heads SET seq = ?, hash = ? WHERE scope = 'all' AND stream = ?",
            seq,
            digest,
            stream,
        )


def swap_entries(log: AuditLog, stream: str, a: int, b: int) -> None:
    """Exchange the rows at seqs `a` and `b` (their contents move, their seqs stay)."""
    entries = {e.seq: e for e in log.entries(stream)}
    marks = ", ".join("?" * len(COLUMNS))
    for here, there in ((a, b), (b, a)):
        row = list(to_row(entries[there]))
        row[1] = here
        if isinstance(log, SQLiteAuditLog):
            delete_entry(log, stream, here)
            sql(log, f"INSERT INTO audit_entries ({', '.join(COLUMNS)}) VALUES ({marks})", *row)
        else:
            cql(
                log,
                f"INSERT INTO audit_entries (epoch, {', '.join(COLUMNS)}) VALUES (?, {marks})",
                epoch_of(here),
                *row,
            )
