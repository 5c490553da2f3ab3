"""Play recounts over several days: what `streamer plays recount` and the edge's periodic
recount (cdn_edge.telemetry.play_recounts) run against a PlayLedger.

A play is counted on its own UTC day, and offline plays arrive up to
`streamer.plays.OFFLINE_WINDOW_S` (30 days) late, so a count may still change, or be left off
by a failure, on any of the `RECOUNT_WINDOW_DAYS` days up to today.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from streamer.errors import StorageError
from streamer.plays import OFFLINE_WINDOW_S
from streamer.sessions.port import PlayLedger, PlayRecount

# Today and the 31 days before: the 30 of the offline window, and one for a player clock that
# put its play just past midnight.
RECOUNT_WINDOW_DAYS = OFFLINE_WINDOW_S // 86_400 + 2


def recent_days(today: date, days: int = RECOUNT_WINDOW_DAYS) -> list[date]:
    """`today` and the days before it, newest first."""
    return [today - timedelta(days=n) for n in range(days)]


@dataclass(frozen=True)
class RecountSweep:
    """What a sweep recounted, and what it could not (each failure says what and why)."""

    recounts: tuple[PlayRecount, ...] = ()
    failures: tuple[str, ...] = ()

    @property
    def corrected(self) -> tuple[PlayRecount, ...]:
        return tuple(r for r in self.recounts if r.corrected)


def recount_due_days(ledger: PlayLedger, days: Iterable[date]) -> RecountSweep:
    """`ledger.recount_due` on each day; a day that fails does not stop the others."""
    return _sweep(days, ledger.recount_due)


def recount_track(ledger: PlayLedger, track_id: str, days: Iterable[date]) -> RecountSweep:
    """`ledger.recount_plays` of the track on each day; a day that fails does not stop the
    others."""
    return _sweep(days, lambda day: (ledger.recount_plays(track_id, day),))


def _sweep(days: Iterable[date], recount: Callable[[date], Iterable[PlayRecount]]) -> RecountSweep:
    recounts: list[PlayRecount] = []
    failures: list[str] = []
    for day in days:
        try:
            recounts.extend(recount(day))
        except StorageError as exc:
            failures.append(f"{day.isoformat()}: {exc}")
    return RecountSweep(tuple(recounts), tuple(failures))
