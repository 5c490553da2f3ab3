"""Royalty play counting: when a session counts as one play of its track, and on which day.

A session counts one play once both kinds of evidence agree that at least `PLAY_THRESHOLD_S`
of audio was played:

- the player's events: media time that actually advanced (streamer.qoe.played_progress:
  position progress, seeks skipped), and
- the edge's deliveries: the media segments it served to the session cover at least as much
  of the track (the union of their time ranges, whatever the renditions).

The play happens at the event whose progress reaches the threshold: at the edge's time of
receipt for live playback, at the player's original time for offline playback (reported
later, within `OFFLINE_WINDOW_S`). It is counted on that moment's UTC day, exactly once per
session: the store keeps one play per session id (insert if absent).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime

from streamer.qoe import played_progress
from streamer.telemetry.model import PlayClaim, PlayerEvent, SegmentDelivery

PLAY_THRESHOLD_S = 30.0  # the industry's royalty threshold (Spotify, Apple Music, YouTube)
OFFLINE_WINDOW_S = 30 * 86_400  # offline plays are reported within 30 days or not at all
FUTURE_SKEW_S = 300  # a player clock this far ahead of ours is still believed


def utc_day(unix_ms: int) -> date:
    return datetime.fromtimestamp(unix_ms / 1000, UTC).date()


def covered_seconds(deliveries: Iterable[SegmentDelivery]) -> float:
    """Seconds of media the delivered segments cover together (overlaps counted once)."""
    spans = sorted((d.start_s, d.start_s + d.duration_s) for d in deliveries if d.duration_s > 0)
    covered = 0.0
    reach = float("-inf")
    for start, end in spans:
        if end <= reach:
            continue
        covered += end - max(start, reach)
        reach = end
    return covered


def offline_refusal(client_ms: int, now_ms: int) -> str | None:
    """Why an offline event stamped `client_ms` cannot be taken now, or None if it can."""
    age_s = (now_ms - client_ms) / 1000
    if age_s > OFFLINE_WINDOW_S:
        return (
            f"offline plays are taken for {OFFLINE_WINDOW_S // 86_400} days; this one is from "
            f"{utc_day(client_ms).isoformat()}, {age_s / 86_400:.1f} days ago"
        )
    if age_s < -FUTURE_SKEW_S:
        return f"the event is stamped {-age_s:.0f} s in the future; check the player's clock"
    return None


def events_show_play(
    track_id: str, events: Iterable[PlayerEvent], threshold_s: float = PLAY_THRESHOLD_S
) -> bool:
    """Whether the events alone reach the threshold: a play needs this, and its deliveries."""
    return any(
        played >= threshold_s
        for _, played in played_progress(e for e in events if e.track_id == track_id)
    )


def decide_play(
    session_id: str,
    track_id: str,
    events: Iterable[PlayerEvent],
    deliveries: Iterable[SegmentDelivery],
    threshold_s: float = PLAY_THRESHOLD_S,
) -> PlayClaim | None:
    """The session's play if the evidence shows one, else None."""
    if covered_seconds(d for d in deliveries if d.track_id == track_id) < threshold_s:
        return None
    for event, played in played_progress(e for e in events if e.track_id == track_id):
        if played >= threshold_s:
            at = event.client_ms if event.offline else event.received_ms
            return PlayClaim(session_id, track_id, utc_day(at), at, event.offline)
    return None
