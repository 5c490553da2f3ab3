"""Plays made offline under a download licence: when one counts, and on which day.

The same rule as streamed plays (streamer.plays), with the licence in place of the edge's
deliveries (the device holds the whole track): a play is counted once its events show
`PLAY_THRESHOLD_S` of media played, at the player's time of the event that reached it, on that
moment's UTC day, and only if the licence held at that moment (granted, not yet expired, not
yet revoked: streamer.offline.policy.valid_at). Its ledger session id is derived from the
licence and the device's play id, so a play reported again is counted once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from streamer.offline.model import Licence
from streamer.offline.policy import Refusal, valid_at
from streamer.plays import PLAY_THRESHOLD_S, offline_refusal, utc_day
from streamer.qoe import played_progress
from streamer.telemetry.model import PlayClaim, PlayerEvent

OFFLINE_PLAY_PREFIX = "off:"  # ':' never occurs in a streaming or download session id


def offline_play_session_id(licence_id: str, play_id: str) -> str:
    """The play ledger's session id of one offline play: one count per (licence, play id)."""
    return f"{OFFLINE_PLAY_PREFIX}{licence_id}:{play_id}"


def _iso(unix_ms: int) -> str:
    return datetime.fromtimestamp(unix_ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def decide_licensed_play(
    licence: Licence,
    play_id: str,
    events: Iterable[PlayerEvent],
    now_ms: int,
    threshold_s: float = PLAY_THRESHOLD_S,
) -> PlayClaim | Refusal:
    """The play's claim, or why it does not count."""
    reached: int | None = None
    for event, played in played_progress(e for e in events if e.track_id == licence.track_id):
        if played >= threshold_s:
            reached = event.client_ms
            break
    if reached is None:
        return Refusal(
            "below_threshold", f"the events show less than {threshold_s:g} s played: not a play"
        )
    too_old = offline_refusal(reached, now_ms)
    if too_old is not None:
        return Refusal("offline_window", too_old)
    if not valid_at(licence, reached // 1000):
        return Refusal(
            "licence_not_valid_at_play",
            f"licence {licence.licence_id} did not hold at {_iso(reached)} (granted"
            f" {_iso(licence.granted_at * 1000)}, expires {_iso(licence.expires_at * 1000)}"
            + ("" if licence.revoked_at is None else f", revoked {_iso(licence.revoked_at * 1000)}")
            + "): the play does not count",
        )
    return PlayClaim(
        offline_play_session_id(licence.licence_id, play_id),
        licence.track_id,
        utc_day(reached),
        reached,
        offline=True,
    )
