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


class QoeFold:
    """`session_qoe` as a running fold: `add` the session's events one by one in the player's
    order (`ordered`), then `result()`. Its size does not grow with the session's length, so a
    holder can keep it for a long session instead of the session's events."""

    __slots__ = (
        "_bitrate",
        "_ended",
        "_errors",
        "_fatal",
        "_last_ms",
        "_pathway",
        "_played",
        "_previous",
        "_stall_from",
        "_stalled_ms",
        "_stalls",
        "_started",
        "_startup_s",
        "_switches",
        "_weighted",
        "_weighted_s",
    )

    def __init__(self) -> None:
        self._previous: PlayerEvent | None = None
        self._played = 0.0
        self._startup_s: float | None = None
        self._started = False
        self._stall_from: int | None = None
        self._stalls = 0
        self._stalled_ms = 0
        self._bitrate: int | None = None
        self._weighted = 0.0
        self._weighted_s = 0.0
        self._switches = self._errors = self._fatal = 0
        self._ended = False
        self._pathway = UNKNOWN_PATHWAY
        self._last_ms = 0

    @property
    def last(self) -> PlayerEvent | None:
        """The event added last."""
        return self._previous

    def add(self, event: PlayerEvent) -> None:
        """The next event in the player's order (the caller orders and deduplicates)."""
        previous, self._previous = self._previous, event
        if previous is not None:
            reached = event.from_s if event.type == "seek" and event.from_s is not None else None
            step = _advance(previous, event, event.position_s if reached is None else reached)
            if step > 0 and self._bitrate is not None:
                self._weighted += self._bitrate * step
                self._weighted_s += step
            self._played += step
        self._last_ms = event.client_ms
        if event.pathway:
            self._pathway = event.pathway
        kind = event.type
        if kind == "play":
            if not self._started and event.startup_ms is not None:
                self._startup_s = event.startup_ms / 1000
            self._started = True
        if kind == "bitrate_switch":
            self._switches += 1
        if kind in ("play", "bitrate_switch") and event.bitrate_kbps is not None:
            self._bitrate = event.bitrate_kbps
        if kind == "stall_start" and self._started and self._stall_from is None:
            self._stall_from = event.client_ms
            self._stalls += 1
        elif kind in ("stall_end", "end") and self._stall_from is not None:
            self._stalled_ms += max(0, event.client_ms - self._stall_from)
            self._stall_from = None
        if kind == "error":
            self._errors += 1
            self._fatal += event.fatal
        if kind == "end":
            self._ended = True

    def result(self) -> SessionQoe:
        """The session's QoE from the events added so far."""
        stalled_ms = self._stalled_ms
        if self._stall_from is not None:
            stalled_ms += max(0, self._last_ms - self._stall_from)
        stalled_s = stalled_ms / 1000
        watched = self._played + stalled_s
        return SessionQoe(
            played_s=self._played,
            startup_s=self._startup_s,
            stalls=self._stalls,
            stalled_s=stalled_s,
            rebuffer_ratio=stalled_s / watched if watched > 0 else 0.0,
            average_bitrate_kbps=self._weighted / self._weighted_s
            if self._weighted_s > 0
            else None,
            bitrate_switches=self._switches,
            errors=self._errors,
            fatal_errors=self._fatal,
            ended=self._ended,
            pathway=self._pathway,
        )


def session_qoe(events: Iterable[PlayerEvent]) -> SessionQoe:
    """The QoE of the session these events belong to."""
    fold = QoeFold()
    for event in ordered(events):
        fold.add(event)
    return fold.result()
