"""Royalty plays in CQL: one claim per session, counters per track and day, and their repair.

Tables (migration 2; sizes in `streamer.sessions.scylla`): `plays_by_session` (the
truth: one row per session, written with LWT), `plays_by_track_day` (the sessions that won,
by track, day and shard: what a recount counts), `track_plays_by_day` (counters: what
`plays_by_day` reads) and `play_recounts_due` (days whose counter may be off).

A claim is counted in three steps: (1) `INSERT ... IF NOT EXISTS` into `plays_by_session`;
only if it applied, (2) the index row and (3) the counter increment (summed per day within a
call). Counters are not idempotent and cannot change in one atomic step with the LWT, so
there is a window in which the index and the counter disagree:

- (2) or (3) fails after (1) applied, or (1) times out with its outcome unknown: the counter
  may be one short. The call marks the (track, day) in `play_recounts_due` and raises;
- a later claim of the same session (a retry) finds the row it would have written: it
  rewrites the index row (idempotent) and marks the day, since it cannot tell whether the
  first attempt's increment landed;
- a process that dies between (1) and (3) leaves its day one short and unmarked.

The counter is never incremented twice for one session: only the claimer whose LWT applied
increments, and the increment is not retried (its statement is not idempotent). `recount`
repairs a day: it counts the index and adds the difference to the counter. `recount_due`
recounts the days marked (the edge runs it periodically, `streamer plays recount --due` on
demand); once a day has settled (live plays stop at midnight UTC; offline plays arrive up to
30 days later), recount its busiest tracks too (`streamer plays recount --track`). A play
whose index row lands while a recount runs, its increment still in flight, can leave that
recount one too high; the next recount settles it.

Two recounts of one counter at once would both add the difference: `recount_due` first takes
each marked day with a conditional delete of its mark (LWT), so that of the processes sweeping
at once only one recounts it; a recount that fails marks the day again. A process that dies
between the two leaves the day unmarked (as one that dies between a claim and its count).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from streamer.cql.connection import Cql, CqlRows, CqlSession
from streamer.cql.fanout import gather, raise_first, sender
from streamer.cql.schema import PLAY_SHARDS
from streamer.errors import StorageError
from streamer.sessions.port import PlayRecount
from streamer.sessions.table_spec import cql_date
from streamer.sessions.tables import PLAYS
from streamer.telemetry.model import PlayClaim

_log = logging.getLogger(__name__)

RECOUNT_TRIES = 3  # a recount whose counter moves under it three times gives up
INDEX_PAGE_ROWS = 5000  # the busiest day's shard is ~470 000 rows: read in pages

_CLAIM = Cql(PLAYS.cql_insert(" IF NOT EXISTS"), idempotent=False)
_INDEX = Cql(
    "INSERT INTO plays_by_track_day (track_id, day, shard, session_id) VALUES (?, ?, ?, ?)",
    idempotent=True,
)
_READ_INDEX = Cql(
    "SELECT session_id FROM plays_by_track_day WHERE track_id = ? AND day = ? AND shard = ?",
    idempotent=True,
)
_INCREMENT = Cql(
    "UPDATE track_plays_by_day SET plays = plays + ? WHERE track_id = ? AND year = ? AND day = ?",
    idempotent=False,  # a counter: a retry could count twice
)
_READ_COUNTS = Cql(
    "SELECT day, plays FROM track_plays_by_day"
    " WHERE track_id = ? AND year = ? AND day >= ? AND day <= ?",
    idempotent=True,
)
_READ_COUNT = Cql(
    "SELECT plays FROM track_plays_by_day WHERE track_id = ? AND year = ? AND day = ?",
    idempotent=True,
)
_MARK_DUE = Cql(
    "INSERT INTO play_recounts_due (day, shard, track_id) VALUES (?, ?, ?)", idempotent=True
)
_READ_DUE = Cql(
    "SELECT track_id FROM play_recounts_due WHERE day = ? AND shard = ?", idempotent=True
)
_CLEAR_DUE = Cql(
    "DELETE FROM play_recounts_due WHERE day = ? AND shard = ? AND track_id = ?",
    idempotent=True,
)
_TAKE_DUE = Cql(
    "DELETE FROM play_recounts_due WHERE day = ? AND shard = ? AND track_id = ? IF EXISTS",
    idempotent=False,
)


class ScyllaPlays:
    """Claims, counts and recounts of royalty plays, over a CQL session."""

    def __init__(self, session: CqlSession) -> None:
        self.session = session

    def claim(self, plays: Sequence[PlayClaim], action: str) -> tuple[PlayClaim, ...]:
        """Claim `plays` (one per session) and count those whose claim applied; mark the days
        that may be off. Returns the plays counted; raises the first failure."""
        claims = gather([sender(self.session, _CLAIM, PLAYS.cql_row(p), action) for p in plays])
        return self._count(plays, claims, action)

    def _count(
        self,
        plays: Sequence[PlayClaim],
        claims: Sequence[CqlRows | StorageError],
        action: str,
    ) -> tuple[PlayClaim, ...]:
        """Index and count the plays whose claim applied (steps 2 and 3)."""
        won: list[PlayClaim] = []
        doubtful: list[PlayClaim] = []  # the counter may or may not hold these
        for play, claim in zip(plays, claims, strict=True):
            if isinstance(claim, StorageError):
                doubtful.append(play)  # the LWT may have applied (a timeout does not say)
                continue
            applied, current = claim.conditional()
            if applied:
                won.append(play)
            elif _is_claim_of(current, play):
                doubtful.append(play)  # this claim again: did its first attempt count it?
        increments: dict[tuple[str, int, date], int] = {}
        for play in won:
            key = (play.track_id, play.day.year, play.day)
            increments[key] = increments.get(key, 0) + 1
        indexed = won + doubtful
        results = gather(
            [sender(self.session, _INDEX, _index_row(play), action) for play in indexed]
            + [sender(self.session, _INCREMENT, (n, *key), action) for key, n in increments.items()]
        )
        due = {(play.track_id, play.day) for play in doubtful}
        due.update(
            (play.track_id, play.day)
            for play, result in zip(indexed, results[: len(indexed)], strict=True)
            if isinstance(result, StorageError)
        )
        due.update(
            (track_id, day)
            for (track_id, _, day), result in zip(increments, results[len(indexed) :], strict=True)
            if isinstance(result, StorageError)
        )
        if due:
            self._mark_due(due, action)
        raise_first(results)
        return tuple(won)

    def plays_by_day(self, track_id: str, first: date, last: date) -> dict[date, int]:
        if first > last:
            return {}
        action = f"read the plays of track {track_id}"
        reads = [
            sender(
                self.session,
                _READ_COUNTS,
                (track_id, year, max(first, date(year, 1, 1)), min(last, date(year, 12, 31))),
                action,
            )
            for year in range(first.year, last.year + 1)
        ]
        counts: dict[date, int] = {}
        for rows in raise_first(gather(reads)):
            for row in rows:
                if row["plays"] is not None and row["plays"] > 0:
                    counts[cql_date(row["day"])] = row["plays"]
        return dict(sorted(counts.items()))

    def recount(self, track_id: str, day: date) -> PlayRecount:
        """Set the day's counter to the number of sessions that won a claim; clear its mark.

        Raises StorageError if the counter kept moving (plays still arriving): run it later.
        """
        action = f"recount the plays of track {track_id} on {day.isoformat()}"
        key = (track_id, day.year, day)
        for _ in range(RECOUNT_TRIES):
            before = self._counter(key, action)
            pages = gather(
                [
                    sender(self.session, _READ_INDEX, (track_id, day, s), action, INDEX_PAGE_ROWS)
                    for s in range(PLAY_SHARDS)
                ]
            )
            exact = sum(sum(1 for _ in rows) for rows in raise_first(pages))
            after = self._counter(key, action)
            if before == after:
                break
        else:
            raise StorageError(f"cannot {action}: its counter moved during {RECOUNT_TRIES} counts")
        if exact != after:
            _log.warning(
                "plays of track %s on %s: counter %d, claims %d; correcting the counter",
                track_id,
                day.isoformat(),
                after,
                exact,
            )
            self.session.execute(_INCREMENT, (exact - after, *key), action=action)
        self.session.execute(_CLEAR_DUE, (day, shard_of(track_id), track_id), action=action)
        return PlayRecount(track_id, day, after, exact)

    def recount_due(self, day: date) -> tuple[PlayRecount, ...]:
        """Recount the tracks marked for `day` that this call takes (see the module docstring)."""
        action = f"recount the plays due on {day.isoformat()}"
        done = []
        for track_id in self.due(day):
            key = (day, shard_of(track_id), track_id)
            taken, _ = self.session.execute(_TAKE_DUE, key, action=action).conditional()
            if not taken:
                continue  # another process took it
            try:
                done.append(self.recount(track_id, day))
            except StorageError as exc:
                _log.warning("%s; it stays due", exc)
                self._mark_due([(track_id, day)], action)
        return tuple(done)

    def due(self, day: date) -> list[str]:
        """Tracks whose counter for `day` may be off after a failure."""
        action = f"list the recounts due on {day.isoformat()}"
        pages = gather(
            [sender(self.session, _READ_DUE, (day, s), action) for s in range(PLAY_SHARDS)]
        )
        return sorted(row["track_id"] for rows in raise_first(pages) for row in rows)

    def _mark_due(self, due: Iterable[tuple[str, date]], action: str) -> None:
        pairs = sorted(due)
        results = gather(
            [
                sender(self.session, _MARK_DUE, (day, shard_of(track_id), track_id), action)
                for track_id, day in pairs
            ]
        )
        lost = [
            f"{track_id} on {day.isoformat()}"
            for (track_id, day), result in zip(pairs, results, strict=True)
            if isinstance(result, StorageError)
        ]
        if lost:
            _log.error(
                "play counters may be off and could not be marked for a recount; recount: %s",
                "; ".join(lost),
            )

    def _counter(self, key: tuple[str, int, date], action: str) -> int:
        row = self.session.execute(_READ_COUNT, key, action=action).one()
        return 0 if row is None or row["plays"] is None else int(row["plays"])


def _is_claim_of(row: dict[str, Any], play: PlayClaim) -> bool:
    """Whether the row a refused claim found is this claim's (a retry of it)."""
    day = row.get("day")
    return row.get("track_id") == play.track_id and day is not None and cql_date(day) == play.day


def _index_row(play: PlayClaim) -> tuple[Any, ...]:
    return (play.track_id, play.day, shard_of(play.session_id), play.session_id)


def shard_of(key: str) -> int:
    """A stable shard of `key` (crc32: the same in every process and version)."""
    return zlib.crc32(key.encode()) % PLAY_SHARDS
