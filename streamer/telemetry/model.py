"""What players and the edge report about a session, as the session store keeps it.

    PlayerEvent       one player event (play, pause, seek, ..., heartbeat), deduplicated by
                      (session_id, event_id)
    CmcdSample        the CMCD keys (CTA-5004) one playlist, key or segment request carried
    SegmentDelivery   a media segment the edge served to a session: evidence of playback
    TelemetryBatch    what one telemetry write takes: any mix of the three above
    PlayClaim         a session's one royalty play, counted on its UTC day: not telemetry
                      but what the play ledger is asked to count (streamer.sessions.port)

Every item is idempotent to write again: events by (session, event id), samples by
(session, sample id), deliveries by (session, object name), play claims by session id.

Times are integer milliseconds since the Unix epoch (UTC) unless the name says otherwise.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

EventType = Literal[
    "play",  # audio started (or resumed); the first one may carry startup_ms
    "pause",
    "seek",  # position_s is where playback went, from_s where it was
    "stall_start",  # the buffer ran dry while playing
    "stall_end",
    "bitrate_switch",  # bitrate_kbps (and rendition) now playing
    "error",
    "heartbeat",  # periodic position report while playing
    "end",  # the session is over (track finished or the listener left)
]
EVENT_TYPES: tuple[EventType, ...] = (
    "play",
    "pause",
    "seek",
    "stall_start",
    "stall_end",
    "bitrate_switch",
    "error",
    "heartbeat",
    "end",
)
ObjectRoute = Literal["playlist", "key", "segment"]

CmcdValue = int | float | str | bool

MAX_ID_CHARS = 128  # track ids are up to 128 characters (transcoder.submit)
MAX_TEXT_CHARS = 512  # error messages
MAX_BITRATE_KBPS = 100_000
_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")


def is_text(value: str) -> bool:
    """Whether `value` is Unicode text a store can keep: JSON lets lone surrogates through."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_id(what: str, value: str) -> None:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValueError(
            f"{what} must be 1 to {MAX_ID_CHARS} of A-Z a-z 0-9 _ . : -, got {value!r}"
        )


def _check_ms(what: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a whole number of milliseconds >= 0, got {value!r}")


def _check_seconds(what: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number of seconds, got {value!r}")
    if value < 0:
        raise ValueError(f"{what} must be >= 0, got {value}")


@dataclass(frozen=True)
class PlayerEvent:
    """One event a player reported for its session."""

    session_id: str
    event_id: str  # chosen by the player, unique within the session: retries repeat it
    type: EventType
    track_id: str
    client_ms: int  # when it happened, by the player's clock (the original time if offline)
    received_ms: int  # when the edge took it, by the edge's clock
    position_s: float  # media position at the event
    seq: int = 0  # the player's event counter in the session (0, 1, ...): orders events
    offline: bool = False  # played without a connection, reported later
    pathway: str = ""  # the content steering pathway in use; "" when the player did not say
    bitrate_kbps: int | None = None  # play, bitrate_switch: the bitrate now playing
    rendition: str = ""  # play, bitrate_switch: the rendition now playing
    from_s: float | None = None  # seek: the position before the seek
    startup_ms: int | None = None  # play: from the load request to the first audio
    error_code: str = ""  # error
    error_message: str = ""  # error
    fatal: bool = False  # error: playback could not go on

    def __post_init__(self) -> None:
        _check_id("session_id", self.session_id)
        _check_id(f"event {self.event_id!r}: event_id", self.event_id)
        where = f"event {self.event_id} of session {self.session_id}"
        if self.type not in EVENT_TYPES:
            raise ValueError(f"{where}: type must be one of {', '.join(EVENT_TYPES)}")
        _check_id(f"{where}: track_id", self.track_id)
        _check_ms(f"{where}: client_ms", self.client_ms)
        _check_ms(f"{where}: received_ms", self.received_ms)
        _check_seconds(f"{where}: position_s", self.position_s)
        _check_ms(f"{where}: seq", self.seq)
        if self.pathway:
            _check_id(f"{where}: pathway", self.pathway)
        if self.rendition:
            _check_id(f"{where}: rendition", self.rendition)
        if self.bitrate_kbps is not None and (
            isinstance(self.bitrate_kbps, bool)
            or not isinstance(self.bitrate_kbps, int)
            or not 1 <= self.bitrate_kbps <= MAX_BITRATE_KBPS
        ):
            raise ValueError(f"{where}: bitrate_kbps must be 1 to {MAX_BITRATE_KBPS}")
        if self.type == "bitrate_switch" and self.bitrate_kbps is None:
            raise ValueError(f"{where}: a bitrate_switch needs bitrate_kbps")
        if self.from_s is not None:
            _check_seconds(f"{where}: from_s", self.from_s)
        if self.type == "seek" and self.from_s is None:
            raise ValueError(f"{where}: a seek needs from_s, the position before it")
        if self.startup_ms is not None:
            _check_ms(f"{where}: startup_ms", self.startup_ms)
        if self.type == "error" and not self.error_code:
            raise ValueError(f"{where}: an error needs error_code")
        if self.error_code:
            _check_id(f"{where}: error_code", self.error_code)
        if len(self.error_message) > MAX_TEXT_CHARS:
            raise ValueError(f"{where}: error_message is over {MAX_TEXT_CHARS} characters")
        if not is_text(self.error_message):
            raise ValueError(f"{where}: error_message has a lone surrogate; send text")


@dataclass(frozen=True)
class CmcdSample:
    """The CMCD keys one request to the edge carried, parsed, with what it asked for."""

    session_id: str
    sample_id: str  # unique per request, so writing a sample twice keeps one
    received_ms: int
    route: ObjectRoute
    object: str  # rendition ("main" for the multivariant), key id or segment name
    status: int  # the edge's HTTP status for the request
    keys: Mapping[str, CmcdValue] = field(default_factory=dict)  # CTA-5004 key -> value

    def __post_init__(self) -> None:
        _check_id("session_id", self.session_id)
        _check_id("sample_id", self.sample_id)
        _check_ms(f"CMCD sample {self.sample_id}: received_ms", self.received_ms)
        if self.route not in ("playlist", "key", "segment"):
            raise ValueError(f"CMCD sample {self.sample_id}: route {self.route!r} is unknown")
        if not 100 <= self.status <= 599:
            raise ValueError(f"CMCD sample {self.sample_id}: status {self.status} is not HTTP")
        object.__setattr__(self, "keys", dict(self.keys))


@dataclass(frozen=True)
class SegmentDelivery:
    """A media segment the edge served to a session (evidence that it was played)."""

    session_id: str
    track_id: str
    version: str
    rendition: str
    name: str  # object name within the version, e.g. "aac_160/seg_00003.m4s"
    start_s: float  # media time at which the segment starts
    duration_s: float
    delivered_ms: int

    def __post_init__(self) -> None:
        _check_id("session_id", self.session_id)
        _check_id("track_id", self.track_id)
        where = f"delivery of {self.name!r} to session {self.session_id}"
        if not self.name or len(self.name) > 256:
            raise ValueError(f"{where}: name must be 1 to 256 characters")
        _check_seconds(f"{where}: start_s", self.start_s)
        _check_seconds(f"{where}: duration_s", self.duration_s)
        _check_ms(f"{where}: delivered_ms", self.delivered_ms)


@dataclass(frozen=True)
class PlayClaim:
    """One royalty play: a session played at least the threshold of its track, on `day` (UTC)."""

    session_id: str
    track_id: str
    day: date  # the UTC day of `played_ms`
    played_ms: int  # when the threshold was reached (the player's original time if offline)
    offline: bool = False

    def __post_init__(self) -> None:
        _check_id("session_id", self.session_id)
        _check_id("track_id", self.track_id)
        _check_ms(f"play of session {self.session_id}: played_ms", self.played_ms)


@dataclass(frozen=True)
class TelemetryBatch:
    """Items written to the store together (in one transaction where the store has them)."""

    events: tuple[PlayerEvent, ...] = ()
    cmcd: tuple[CmcdSample, ...] = ()
    deliveries: tuple[SegmentDelivery, ...] = ()

    def __post_init__(self) -> None:
        for name in ("events", "cmcd", "deliveries"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def __len__(self) -> int:
        return len(self.events) + len(self.cmcd) + len(self.deliveries)


@dataclass(frozen=True)
class SessionTelemetry:
    """Everything stored about one session's playback, each kind in time order."""

    events: tuple[PlayerEvent, ...] = ()  # by (client_ms, seq, event_id)
    cmcd: tuple[CmcdSample, ...] = ()  # by received_ms
    deliveries: tuple[SegmentDelivery, ...] = ()  # by delivered_ms
    play: PlayClaim | None = None


TelemetryItem = PlayerEvent | CmcdSample | SegmentDelivery


def without_gaps(events: Iterable[PlayerEvent]) -> bool:
    """Whether `events` are provably every event of their session up to the latest one.

    True when their player counters (`seq`, repeats of one event id counted once) are exactly
    0, 1, ..., n-1: a player that numbers its events lets whoever holds them all decide from
    them without reading the session back. Players that do not number them (every `seq` 0),
    or events missing (sent to another edge, still in flight), make this False.
    """
    seqs: set[int] = set()
    ids: set[str] = set()
    for event in events:
        if event.event_id not in ids:
            ids.add(event.event_id)
            seqs.add(event.seq)
    return bool(ids) and len(seqs) == len(ids) and max(seqs) == len(ids) - 1


def batch_of(items: Iterable[TelemetryItem]) -> TelemetryBatch:
    """Sort a sequence of telemetry items into a batch; TypeError names a foreign item."""
    events: list[PlayerEvent] = []
    cmcd: list[CmcdSample] = []
    deliveries: list[SegmentDelivery] = []
    for index, item in enumerate(items):
        if isinstance(item, PlayerEvent):
            events.append(item)
        elif isinstance(item, CmcdSample):
            cmcd.append(item)
        elif isinstance(item, SegmentDelivery):
            deliveries.append(item)
        else:
            raise TypeError(f"item {index} is a {type(item).__name__}, not a telemetry item")
    return TelemetryBatch(tuple(events), tuple(cmcd), tuple(deliveries))
