"""Quality of experience of one session, computed from its player events: pure.

Events are deduplicated by event id (the first copy wins) and ordered by the player's clock
(client_ms, then its counter seq, then event id), so retried, duplicated and reordered
reports give the same answer as a clean stream.

- played: media time that actually advanced, from position reports. Between two consecutive
  events the position may move forward by at most the wall time between them times
  `MAX_PLAYBACK_RATE` (plus `CLOCK_SLACK_S`); a larger jump, or a backward one, is a seek the
  player did not report and counts nothing. A seek counts up to its `from_s`, then playback
  continues from its `position_s`.
- startup time: the `startup_ms` the first play event reports (the player measures from its
  load request to the first audio; hls.js: `play()` to the media element's `playing`).
- stalls: stall_start to stall_end (or to `end`, or to the last event) after the first play;
  rebuffer ratio = stalled / (played + stalled).
- average bitrate: bitrates in effect (from play and bitrate_switch), weighted by played time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from streamer.telemetry.model import PlayerEvent

MAX_PLAYBACK_RATE = 2.0  # players offer up to 2x; faster progress is a skip, not playback
CLOCK_SLACK_S = 1.0  # heartbeat timers and position rounding
UNKNOWN_PATHWAY = "unknown"


def ordered(events: Iterable[PlayerEvent]) -> list[PlayerEvent]:
    """Events without repeated event ids, in the player's order."""
    seen: dict[str, PlayerEvent] = {}
    for event in events:
        seen.setdefault(event.event_id, event)
    return sorted(seen.values(), key=lambda e: (e.client_ms, e.seq, e.event_id))


def played_progress(events: Iterable[PlayerEvent]) -> Iterator[tuple[PlayerEvent, float]]:
    """Each event in order with the media seconds played up to it (see the module docstring)."""
    played = 0.0
    previous: PlayerEvent | None = None
    for event in ordered(events):
        if previous is not None:
            reached = event.from_s if event.type == "seek" and event.from_s is not None else None
            target = event.position_s if reached is None else reached
            played += _advance(previous, event, target)
        previous = event
        yield event, played


def _advance(previous: PlayerEvent, event: PlayerEvent, position_s: float) -> float:
    delta = position_s - previous.position_s
    wall_s = max(0, event.client_ms - previous.client_ms) / 1000
    if delta <= 0 or delta > wall_s * MAX_PLAYBACK_RATE + CLOCK_SLACK_S:
        return 0.0
    return delta


@dataclass(frozen=True)
class SessionQoe:
    """What one session's listener experienced."""

    played_s: float = 0.0
    startup_s: float | None = None
    stalls: int = 0
    stalled_s: float = 0.0
    rebuffer_ratio: float = 0.0
    average_bitrate_kbps: float | None = None
    bitrate_switches: int = 0
    errors: int = 0
    fatal_errors: int = 0
    ended: bool = False
    pathway: str = UNKNOWN_PATHWAY  # the last pathway the player named


def session_qoe(events: Iterable[PlayerEvent]) -> SessionQoe:
    """The QoE of the session these events belong to."""
    played = 0.0
    startup_s: float | None = None
    started = False
    stall_from: int | None = None
    stalls = 0
    stalled_ms = 0
    bitrate: int | None = None
    weighted = 0.0
    weighted_s = 0.0
    switches = errors = fatal = 0
    ended = False
    pathway = UNKNOWN_PATHWAY
    last_ms = 0
    for event, total in played_progress(events):
        step = total - played
        if step > 0 and bitrate is not None:
            weighted += bitrate * step
            weighted_s += step
        played = total
        last_ms = event.client_ms
        if event.pathway:
            pathway = event.pathway
        kind = event.type
        if kind == "play":
            if not started and event.startup_ms is not None:
                startup_s = event.startup_ms / 1000
            started = True
        if kind == "bitrate_switch":
            switches += 1
        if kind in ("play", "bitrate_switch") and event.bitrate_kbps is not None:
            bitrate = event.bitrate_kbps
        if kind == "stall_start" and started and stall_from is None:
            stall_from = event.client_ms
            stalls += 1
        elif kind in ("stall_end", "end") and stall_from is not None:
            stalled_ms += max(0, event.client_ms - stall_from)
            stall_from = None
        if kind == "error":
            errors += 1
            fatal += event.fatal
        if kind == "end":
            ended = True
    if stall_from is not None:
        stalled_ms += max(0, last_ms - stall_from)
    stalled_s = stalled_ms / 1000
    watched = played + stalled_s
    return SessionQoe(
        played_s=played,
        startup_s=startup_s,
        stalls=stalls,
        stalled_s=stalled_s,
        rebuffer_ratio=stalled_s / watched if watched > 0 else 0.0,
        average_bitrate_kbps=weighted / weighted_s if weighted_s > 0 else None,
        bitrate_switches=switches,
        errors=errors,
        fatal_errors=fatal,
        ended=ended,
        pathway=pathway,
    )
