"""The play ledger in SQLite: claims in `plays`, counts per track and day in `play_counts`.

Functions over a connection, each run in one of the store's transactions
(streamer.sessions.sqlite). A claim inserts its `plays` row if the session has none and, only
then, adds one to its track's day in the same transaction, so a count cannot drift from its
claims; recounts find and repair a count changed another way (by hand, by a restored backup).
They take the write lock first (BEGIN IMMEDIATE), so that no claim lands between the count
of the claims and the count's repair.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from datetime import date

from streamer.sessions.port import PlayRecount
from streamer.sessions.tables import PLAYS
from streamer.telemetry.model import PlayClaim

_log = logging.getLogger(__name__)

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS play_counts (
    track_id  TEXT NOT NULL,
    day       TEXT NOT NULL,
    plays     INTEGER NOT NULL,
    PRIMARY KEY (track_id, day)
) WITHOUT ROWID""",
    # What a recount counts, and what finds the days due.
    "CREATE INDEX IF NOT EXISTS plays_by_day ON plays (day, track_id)",
    "CREATE INDEX IF NOT EXISTS play_counts_by_day ON play_counts (day)",
)

_CLAIM = PLAYS.sqlite_insert()
_COUNT = (
    "INSERT INTO play_counts (track_id, day, plays) VALUES (?, ?, 1) "
    "ON CONFLICT (track_id, day) DO UPDATE SET plays = plays + 1"
)
_READ_COUNTS = (
    "SELECT day, plays FROM play_counts WHERE track_id = ? AND day BETWEEN ? AND ? ORDER BY day"
)
_READ_COUNT = "SELECT plays FROM play_counts WHERE track_id = ? AND day = ?"
_COUNT_CLAIMS = "SELECT count(*) FROM plays WHERE track_id = ? AND day = ?"
_SET_COUNT = (
    "INSERT INTO play_counts (track_id, day, plays) VALUES (?, ?, ?) "
    "ON CONFLICT (track_id, day) DO UPDATE SET plays = excluded.plays"
)
_DROP_COUNT = "DELETE FROM play_counts WHERE track_id = ? AND day = ?"
# Tracks of the day whose count is not the number of their claims.
_DUE = """
SELECT track_id FROM (
    SELECT track_id, count(*) AS claims, 0 AS counted FROM plays WHERE day = ?1
    GROUP BY track_id
    UNION ALL
    SELECT track_id, 0, plays FROM play_counts WHERE day = ?1
) GROUP BY track_id HAVING sum(claims) != sum(counted) ORDER BY track_id
"""


def claim(db: sqlite3.Connection, plays: Sequence[PlayClaim]) -> tuple[PlayClaim, ...]:
    """Insert each claim if its session has none; count the new ones; those counted."""
    counted = []
    for play in plays:
        if db.execute(_CLAIM, PLAYS.sqlite_row(play)).rowcount == 1:
            db.execute(_COUNT, (play.track_id, play.day.isoformat()))
            counted.append(play)
    return tuple(counted)


def counts(db: sqlite3.Connection, track_id: str, first: date, last: date) -> dict[date, int]:
    rows = db.execute(_READ_COUNTS, (track_id, first.isoformat(), last.isoformat()))
    return {date.fromisoformat(day): plays for day, plays in rows if plays > 0}


def recount(db: sqlite3.Connection, track_id: str, day: date) -> PlayRecount:
    db.execute("BEGIN IMMEDIATE")
    return _recount(db, track_id, day)


def recount_due(db: sqlite3.Connection, day: date) -> tuple[PlayRecount, ...]:
    db.execute("BEGIN IMMEDIATE")
    due = [track_id for (track_id,) in db.execute(_DUE, (day.isoformat(),)).fetchall()]
    return tuple(_recount(db, track_id, day) for track_id in due)


def _recount(db: sqlite3.Connection, track_id: str, day: date) -> PlayRecount:
    key = (track_id, day.isoformat())
    row = db.execute(_READ_COUNT, key).fetchone()
    counted = 0 if row is None else int(row[0])
    (claims,) = db.execute(_COUNT_CLAIMS, key).fetchone()
    if claims != counted:
        _log.warning(
            "plays of track %s on %s: count %d, claims %d; correcting the count",
            track_id,
            day.isoformat(),
            counted,
            claims,
        )
        if claims:
            db.execute(_SET_COUNT, (*key, claims))
        else:
            db.execute(_DROP_COUNT, key)
    return PlayRecount(track_id, day, counted, int(claims))
