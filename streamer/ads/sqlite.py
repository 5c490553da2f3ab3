"""The embedded ad store: one SQLite file under the data directory.

One connection shared by the threads that call it, serialised by a lock; every primary key is
the record's identity, so INSERT OR IGNORE makes a write again harmless.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import TypeVar

from streamer.ads.campaigns import Campaign, decode_campaign, encode_campaign
from streamer.ads.port import AD_EVENTS, AdDecisionRecord, AdEvent, AdEventName, utc_day
from streamer.errors import StorageError
from streamer.sqlite_files import enable_wal

T = TypeVar("T")
BUSY_TIMEOUT_S = 5.0  # another edge worker holding the write lock

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ad_campaigns (campaign_id TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ad_decisions (
    decision_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    day TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    ad_id TEXT NOT NULL,
    break_index INTEGER NOT NULL,
    decided_at REAL NOT NULL,
    reason TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ad_decisions_by_user ON ad_decisions (user_id, day);
CREATE INDEX IF NOT EXISTS ad_decisions_by_campaign ON ad_decisions (campaign_id, day);
CREATE TABLE IF NOT EXISTS ad_events (
    decision_id TEXT NOT NULL,
    event TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    day TEXT NOT NULL,
    at REAL NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (decision_id, event)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ad_events_by_campaign ON ad_events (campaign_id, day);
"""


class SQLiteAdStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
            )
            enable_wal(self._db, BUSY_TIMEOUT_S)
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the ad store {path}: {exc}") from exc

    def __repr__(self) -> str:
        return f"SQLiteAdStore({str(self.path)!r})"

    def _run(self, action: str, work: Callable[[sqlite3.Connection], T]) -> T:
        with self._lock:
            try:
                return work(self._db)
            except sqlite3.Error as exc:
                raise StorageError(f"ad store {self.path}: cannot {action}: {exc}") from exc

    def put_campaign(self, campaign: Campaign) -> None:
        self._run(
            f"store campaign {campaign.campaign_id}",
            lambda db: db.execute(
                "INSERT OR REPLACE INTO ad_campaigns (campaign_id, doc) VALUES (?, ?)",
                (campaign.campaign_id, encode_campaign(campaign)),
            ),
        )

    def campaigns(self) -> list[Campaign]:
        rows = self._run(
            "read campaigns",
            lambda db: db.execute("SELECT doc FROM ad_campaigns ORDER BY campaign_id").fetchall(),
        )
        return [decode_campaign(doc) for (doc,) in rows]

    def record_decisions(self, decisions: Sequence[AdDecisionRecord]) -> None:
        rows = [
            (
                d.decision_id,
                d.session_id,
                d.user_id,
                utc_day(d.decided_at).isoformat(),
                d.campaign_id,
                d.ad_id,
                d.break_index,
                d.decided_at,
                d.reason,
            )
            for d in decisions
        ]

        def write(db: sqlite3.Connection) -> None:
            with db:
                db.execute("BEGIN")
                db.executemany(
                    "INSERT OR IGNORE INTO ad_decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
                )

        self._run(f"record {len(rows)} ad decisions", write)

    def decisions_of(self, user_id: str, day: date) -> list[AdDecisionRecord]:
        rows = self._run(
            f"read the ad decisions of {user_id}",
            lambda db: db.execute(
                "SELECT decision_id, session_id, user_id, campaign_id, ad_id, break_index,"
                " decided_at, reason FROM ad_decisions WHERE user_id = ? AND day = ?"
                " ORDER BY decision_id",
                (user_id, day.isoformat()),
            ).fetchall(),
        )
        return [AdDecisionRecord(*row) for row in rows]

    def served_by_campaign(self, campaign_ids: Sequence[str], day: date) -> dict[str, int]:
        ids = list(campaign_ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._run(
            "count the breaks served per campaign",
            lambda db: db.execute(
                f"SELECT campaign_id, count(*) FROM ad_decisions WHERE day = ?"
                f" AND campaign_id IN ({marks}) GROUP BY campaign_id",
                (day.isoformat(), *ids),
            ).fetchall(),
        )
        counts = dict.fromkeys(ids, 0)
        counts.update({campaign: int(n) for campaign, n in rows})
        return counts

    def record_events(self, events: Sequence[AdEvent]) -> None:
        rows = [
            (e.decision_id, e.event, e.campaign_id, utc_day(e.at).isoformat(), e.at, e.source)
            for e in events
        ]

        def write(db: sqlite3.Connection) -> None:
            with db:
                db.execute("BEGIN")
                db.executemany("INSERT OR IGNORE INTO ad_events VALUES (?, ?, ?, ?, ?, ?)", rows)

        self._run(f"record {len(rows)} ad events", write)

    def event_counts(self, campaign_id: str, day: date) -> dict[AdEventName, int]:
        rows = self._run(
            f"count the ad events of campaign {campaign_id}",
            lambda db: db.execute(
                "SELECT event, count(*) FROM ad_events WHERE campaign_id = ? AND day = ?"
                " GROUP BY event",
                (campaign_id, day.isoformat()),
            ).fetchall(),
        )
        found = dict(rows)
        return {event: int(found.get(event, 0)) for event in AD_EVENTS}

    def close(self) -> None:
        with self._lock:
            self._db.close()
