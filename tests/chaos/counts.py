"""What the store holds after a scenario, against what the players were told."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from streamer.sessions.port import SessionStore
from tests.chaos.players import Player


@dataclass(frozen=True)
class Counts:
    acked: int  # events the edge answered 202
    lost: int  # of those, not in the store
    duplicated: int  # events stored more than once (a read lists each row)
    sessions_with_play: int
    plays_counted: int  # the play ledger's count for the track over the run's days

    @property
    def double_counted(self) -> int:
        return self.plays_counted - self.sessions_with_play


def count(store: SessionStore, players: Sequence[Player], track_id: str) -> Counts:
    acked = lost = duplicated = with_play = 0
    for player in players:
        if not player.session_id:
            continue
        telemetry = store.session_telemetry(player.session_id)
        ids = [event.event_id for event in telemetry.events]
        duplicated += len(ids) - len(set(ids))
        acked += len(player.acked)
        lost += len(player.acked - set(ids))
        with_play += telemetry.play is not None
    today = datetime.now(UTC).date()
    counted = store.plays_by_day(track_id, today - timedelta(days=1), today + timedelta(days=1))
    return Counts(acked, lost, duplicated, with_play, sum(counted.values()))
