"""Shipping the same lines again (a crash between the store write and the position save)
duplicates no delivery or sample and counts no play twice, in every session store."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdn_edge.logship.offsets import LogPosition
from cdn_edge.logship.shipper import Shipper
from cdn_edge.logship.stats import ShipStats
from cdn_edge.logship.tailer import LogTailer
from cdn_edge.logship.timelines import TrackTimelines
from streamer.cql.connection import Cql
from streamer.errors import StorageError
from streamer.objects.local import LocalObjectStore
from streamer.plays import utc_day
from streamer.sessions.port import SessionStore
from streamer.sessions.scylla import ScyllaSessionStore
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.telemetry.model import TelemetryBatch
from tests.backends.services import backend_params
from tests.contract.session_stores import SESSION_STORES
from tests.logship.builders import line, published_track, session_lines
from tests.telemetry.builders import T0_MS, listening

PLAY_DAY = utc_day(T0_MS)  # the day of the builders' events


class CrashAfter:
    """A PositionStore that saves the first `saves` positions and loses every later one, as a
    shipper killed after its store writes but before saving would."""

    def __init__(self, saves: int, start: LogPosition | None = None) -> None:
        self.left = saves
        self.saved = start

    def load(self) -> LogPosition | None:
        return self.saved

    def save(self, position: LogPosition) -> None:
        if self.left > 0:
            self.left -= 1
            self.saved = position


@pytest.fixture(params=backend_params(SESSION_STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SessionStore]:
    opened = SESSION_STORES[request.param](tmp_path)
    yield opened
    with contextlib.suppress(StorageError):
        opened.close()


def raw_rows(store: SessionStore, table: str, session_id: str) -> int:
    """Rows the store holds for the session, duplicates included (reads deduplicate)."""
    if isinstance(store, ScyllaSessionStore):
        query = Cql(f"SELECT COUNT(*) AS n FROM {table} WHERE session_id = ?", idempotent=True)
        row = store.session.execute(query, (session_id,), action="count").one()
        assert row is not None
        return int(row["n"])
    assert isinstance(store, SQLiteSessionStore)
    with sqlite3.connect(store.path) as db:
        sql = f"SELECT COUNT(*) FROM {table} WHERE session_id = ?"
        return int(db.execute(sql, (session_id,)).fetchone()[0])


def ship(log: Path, store: SessionStore, objects: Path, positions: CrashAfter) -> ShipStats:
    shipper = Shipper(
        LogTailer(log, positions.load()),
        positions,
        store,
        store,
        TrackTimelines(LocalObjectStore(objects)),
        batch_lines=5,  # several batches, so a crash can fall between them
        sleep=lambda _: None,
        position_interval_s=0.0,  # a save after every batch: a crash point between any two
    )
    shipper.run(once=True)
    stats = shipper.stats()
    shipper.close()
    assert stats.bytes_behind == 0 and stats.seconds_behind == 0
    return stats


@pytest.mark.parametrize("saves_before_crash", [0, 2])
def test_reshipping_counts_plays_once_and_duplicates_nothing(
    store: SessionStore, tmp_path: Path, saves_before_crash: int
) -> None:
    data = tmp_path / "data"
    published_track(data)
    # s1 and s2 listened 40 s (events at the edge); s3 has deliveries but no events.
    events = [*listening(40, session_id="s1"), *listening(40, session_id="s2")]
    store.write_telemetry(TelemetryBatch(events=tuple(events)))
    log = tmp_path / "access.log"
    lines = [x for s in ("s1", "s2", "s3") for x in session_lines(s)]
    lines.insert(3, line(status="403", session_id="", object=""))
    lines.insert(7, b"{torn garbage\n")
    log.write_bytes(b"".join(lines))

    positions = CrashAfter(saves_before_crash)
    first = ship(log, store, data / "objects", positions)
    assert first.plays_counted == 2
    assert first.deliveries == 24
    # The crash: the last saves were lost. A new shipper starts from what was saved.
    again = ship(log, store, data / "objects", CrashAfter(10**6, positions.saved))
    assert again.plays_counted == 0
    # The first two batches (10 lines) held the refused request and the garbage line.
    assert again.deliveries == (16 if saves_before_crash else 24)

    assert store.plays_by_day("trk1", PLAY_DAY, PLAY_DAY) == {PLAY_DAY: 2}
    for session_id in ("s1", "s2", "s3"):
        telemetry = store.session_telemetry(session_id)
        assert len(telemetry.deliveries) == 8
        assert len({d.name for d in telemetry.deliveries}) == 8
        assert len(telemetry.cmcd) == 8
        assert raw_rows(store, "segment_deliveries", session_id) == 8
        assert raw_rows(store, "cmcd_samples", session_id) == 8
        assert (telemetry.play is not None) == (session_id != "s3")
    assert first.malformed == {"not_json": 1} and first.unverified == 1
