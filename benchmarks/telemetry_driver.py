"""The telemetry benchmark's baseline and its checks: the CQL driver alone, no store around it.

`DriverOnly` is a session of the driver with the policies `streamer.cql.connection` gives the store
(token-aware round robin, the configured consistency, the same request timeout), opened in
the benchmark's keyspace. `insert_all` runs one prepared statement over a stream of rows with a
fixed number of requests in flight: each completion sends the next row from the driver's I/O
thread, as `cassandra.concurrent.execute_concurrent` does, but every request has a timeout.
`count_rows` counts a table's rows per partition, to check that nothing was lost.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from cassandra import ConsistencyLevel, DriverException
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    Session,
)
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import PreparedStatement

from streamer.cql.connection import (
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_REQUEST_TIMEOUT_S,
    Cql,
    consistency_level,
    describe_error,
    keyspace_name,
    parse_hosts,
)
from streamer.errors import StorageError
from streamer.sessions.scylla import first_wins_insert, first_wins_timestamp
from streamer.sessions.tables import PLAYER_EVENTS
from streamer.settings import Settings
from streamer.telemetry.model import PlayerEvent

# The baseline runs the very statement the store runs for a player event, on the rows the
# store makes of it: both derived from the table's declaration, so that they cannot drift.
EVENT_INSERT = first_wins_insert(PLAYER_EVENTS)

COUNT_CONCURRENCY = 64  # partitions counted at once after a run
# A run whose last request has not answered this long after its deadline is broken, not slow.
FINISH_GRACE_S = 2 * DEFAULT_REQUEST_TIMEOUT_S


@dataclass(frozen=True)
class InsertResult:
    sent: int
    ok: int
    failed: int
    elapsed_s: float  # from the first request sent to the last answer
    first_error: str | None


class DriverOnly:
    """A driver session in the benchmark keyspace; close it when done."""

    def __init__(self, settings: Settings) -> None:
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=None)),
            consistency_level=consistency_level(settings.cql_consistency),
            serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
            request_timeout=DEFAULT_REQUEST_TIMEOUT_S,
        )
        self.cluster = Cluster(
            contact_points=list(parse_hosts(settings.cql_hosts)),
            port=settings.cql_port,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            connect_timeout=DEFAULT_CONNECT_TIMEOUT_S,
            control_connection_timeout=DEFAULT_CONNECT_TIMEOUT_S,
        )
        try:
            self.session: Session = self.cluster.connect(keyspace_name(settings))
        except (DriverException, NoHostAvailable, OSError) as exc:
            self.cluster.shutdown()
            raise StorageError(
                f"the driver cannot connect to {settings.cql_hosts}:{settings.cql_port}: "
                f"{describe_error(exc)}"
            ) from exc

    def prepare(self, statement: Cql) -> PreparedStatement:
        prepared = self.session.prepare(statement.text)
        prepared.is_idempotent = statement.idempotent
        return prepared

    def release_version(self) -> str:
        row = self.session.execute("SELECT release_version FROM system.local").one()
        return str(row[0]) if row else "?"

    def close(self) -> None:
        self.cluster.shutdown()


def insert_all(
    session: Session,
    prepared: PreparedStatement,
    rows: Iterable[Sequence[Any]],
    concurrency: int,
    deadline: float,
    clock: Callable[[], float] = time.perf_counter,
) -> InsertResult:
    """Run `prepared` once per row, `concurrency` at a time, until the rows run out or the
    `deadline` (on `clock`) passes; then wait for the answers of what was sent."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    source: Iterator[Sequence[Any]] = iter(rows)
    lock = threading.Lock()
    done = threading.Event()
    local = threading.local()  # the trampoline of the thread sending
    state = {"sent": 0, "ok": 0, "failed": 0, "in_flight": 0, "last": 0.0, "exhausted": 0}
    errors: list[str] = []

    def next_row() -> Sequence[Any] | None:
        with lock:
            row = None if clock() >= deadline else next(source, None)
            if row is None:
                state["exhausted"] = 1
                if state["in_flight"] == 0:
                    done.set()
                return None
            state["sent"] += 1
            state["in_flight"] += 1
            return row

    def send_one() -> None:
        row = next_row()
        if row is None:
            return
        try:
            future = session.execute_async(prepared, row, timeout=DEFAULT_REQUEST_TIMEOUT_S)
        except Exception as exc:  # no connection at all: this chain ends here
            settle(False, exc)
            return
        future.add_callbacks(lambda _: answered(True), lambda exc: answered(False, exc))

    def send() -> None:
        # A future that completed before its callbacks were added calls them at once, in
        # this thread: queue the send instead of recursing once per row.
        if getattr(local, "active", False):
            local.pending += 1
            return
        local.active, local.pending = True, 1
        try:
            while local.pending:
                local.pending -= 1
                send_one()
        finally:
            local.active = False

    def settle(ok: bool, exc: BaseException | None = None) -> None:
        with lock:
            state["ok" if ok else "failed"] += 1
            state["in_flight"] -= 1
            state["last"] = clock()
            if exc is not None and not errors:
                errors.append(f"{type(exc).__name__}: {exc}")
            if state["exhausted"] and state["in_flight"] == 0:
                done.set()

    def answered(ok: bool, exc: BaseException | None = None) -> None:
        settle(ok, exc)
        send()  # this chain's next row, if any is left

    started = clock()
    for _ in range(concurrency):
        send()
    done.wait(timeout=max(0.0, deadline - clock()) + FINISH_GRACE_S)
    with lock:
        return InsertResult(
            sent=int(state["sent"]),
            ok=int(state["ok"]),
            failed=int(state["failed"]) + int(state["in_flight"]),  # unanswered: failed
            elapsed_s=max(state["last"], started) - started,
            first_error=errors[0] if errors else None,
        )


def count_rows(session: Session, table: str, partitions: Iterable[str]) -> dict[str, int]:
    """Rows of `table` in each partition (by `session_id`), counted concurrently."""
    statement = session.prepare(f"SELECT COUNT(*) FROM {table} WHERE session_id = ?")
    counts: dict[str, int] = {}
    keys = iter(partitions)
    while batch := list(itertools.islice(keys, COUNT_CONCURRENCY)):
        futures = [
            session.execute_async(statement, (key,), timeout=DEFAULT_REQUEST_TIMEOUT_S)
            for key in batch
        ]
        for key, future in zip(batch, futures, strict=True):
            counts[key] = int(future.result().one()[0])
    return counts


def event_rows(
    requests: Iterable[Sequence[PlayerEvent]], sent: Counter[str]
) -> Iterator[tuple[Any, ...]]:
    """The rows the store writes for these events, each counted in `sent` by session as it
    is taken; the first-wins write timestamp from the clock, as the store makes it."""
    for request in requests:
        for event in request:
            sent[event.session_id] += 1
            yield (*PLAYER_EVENTS.cql_row(event), first_wins_timestamp(time.time()))
