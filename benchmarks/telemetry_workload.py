"""The telemetry benchmark's workload: player events of many sessions, as the edge receives them.

Each session is one listener playing one track, reported as the player page does
(cdn_edge/web/player.html) and as the events API takes it (cdn_edge/handlers/events.py): `play`
(with startup time, bitrate and rendition), a `heartbeat` every 10 s of wall time, `end`; and, at
the rates below, a bitrate switch, a stall, a pause, a seek or a non-fatal error. A quarter of the
sessions are skipped before the end of the track. Every event is one request, except for offline
sessions, which report all their events in one request when the device is back.

`--listeners` players send at once: each plays its sessions one after another, and requests
of all of them interleave at random (seeded, so every run has the same mix). The segments the
edge served each session (what hls.js loads: the track up to 30 s past the furthest position)
come with the workload, to be stored before the clock starts, so the sink decides plays as it
does in production; without them (`deliveries=False`) no session can count a play, and the
sink reads each one back on every batch, as for sessions whose segments came from another CDN.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, TypeVar

from streamer.telemetry.model import EventType, PlayerEvent, SegmentDelivery

HEARTBEAT_S = 10.0  # cdn_edge/web/player.html: HEARTBEAT_MS
TRACK_S = (180.0, 240.0)  # track lengths, uniform
SEGMENT_S = 6.0  # the transcoder's default segment target
BUFFER_S = 30.0  # hls.js loads this far ahead of the position
SKIP_SHARE = 0.25  # sessions left 5 to 60 s in
OFFLINE_SHARE = 0.02  # sessions played offline, reported in one request afterwards
# Incidents per 10-s stretch of playback: about 21 stretches in a track, so a session sees on
# average 0.4 bitrate switches, 0.2 stalls, 0.1 pauses and seeks, 0.02 errors.
P_SWITCH = 0.02
P_STALL = 0.01
P_PAUSE = 0.005
P_SEEK = 0.005
P_ERROR = 0.001
RENDITIONS = (("aac_96", 96), ("aac_160", 160), ("aac_256", 256), ("opus_96", 96))
PATHWAYS = ("edge", "edge", "cdn-a", "cdn-b")
TRACKS = 500  # distinct track ids

T = TypeVar("T")


@dataclass(frozen=True)
class Workload:
    """Requests in the order the players send them, with what verification needs."""

    requests: tuple[tuple[PlayerEvent, ...], ...]
    events_by_session: dict[str, int]
    deliveries: tuple[SegmentDelivery, ...]  # to store before the clock starts

    @property
    def events(self) -> int:
        return sum(self.events_by_session.values())

    def describe(self) -> dict[str, Any]:
        types = Counter(e.type for request in self.requests for e in request)
        return {
            "sessions": len(self.events_by_session),
            "events": self.events,
            "requests": len(self.requests),
            "events_per_request_mean": round(self.events / max(1, len(self.requests)), 3),
            "events_by_type": dict(types.most_common()),
            "deliveries_stored_first": len(self.deliveries),
        }


class _Session:
    """One session's events as a player reports them: wall time and media position advance."""

    def __init__(self, rng: random.Random, session_id: str, track_id: str, start_ms: int):
        self.rng = rng
        self.session_id = session_id
        self.track_id = track_id
        self.start_ms = start_ms
        self.pathway = rng.choice(PATHWAYS)
        self.offline = rng.random() < OFFLINE_SHARE
        self.rendition, self.kbps = rng.choice(RENDITIONS)
        self.events: list[PlayerEvent] = []
        self.wall_s = 0.0
        self.furthest_s = 0.0

    def emit(self, kind: EventType, position_s: float, **fields: Any) -> None:
        at_ms = self.start_ms + round(self.wall_s * 1000)
        self.furthest_s = max(self.furthest_s, position_s)
        self.events.append(
            PlayerEvent(
                session_id=self.session_id,
                event_id=f"{self.session_id}.{len(self.events)}",  # as the player page names them
                type=kind,
                track_id=self.track_id,
                client_ms=at_ms,
                received_ms=at_ms,
                position_s=round(position_s, 3),
                seq=len(self.events),
                offline=self.offline,
                pathway=self.pathway,
                **fields,
            )
        )

    def play(self) -> float:
        """Report a whole session; the track's length."""
        rng = self.rng
        length = rng.uniform(*TRACK_S)
        stop = rng.uniform(5.0, 60.0) if rng.random() < SKIP_SHARE else length
        self.emit(
            "play",
            0.0,
            startup_ms=rng.randint(150, 2500),
            bitrate_kbps=self.kbps,
            rendition=self.rendition,
        )
        position = 0.0
        while True:
            step = min(HEARTBEAT_S, stop - position)
            self.wall_s += step
            position += step
            if position >= stop:
                break
            self._incident(position, length)
            if self.events[-1].type == "seek":
                position = self.events[-1].position_s
                if position >= stop:
                    break
            self.emit("heartbeat", position)
        self.emit("end", min(position, stop))
        return length

    def _incident(self, position: float, length: float) -> None:
        rng = self.rng
        roll = rng.random()
        if roll < P_SWITCH:
            self.rendition, self.kbps = rng.choice(RENDITIONS)
            self.emit("bitrate_switch", position, bitrate_kbps=self.kbps, rendition=self.rendition)
        elif roll < P_SWITCH + P_STALL:
            self.emit("stall_start", position)
            self.wall_s += rng.uniform(0.3, 4.0)
            self.emit("stall_end", position)
        elif roll < P_SWITCH + P_STALL + P_PAUSE:
            self.emit("pause", position)
            self.wall_s += rng.uniform(2.0, 60.0)
            self.emit("play", position)
        elif roll < P_SWITCH + P_STALL + P_PAUSE + P_SEEK:
            self.emit("seek", rng.uniform(0.0, length - 1.0), from_s=position)
        elif roll < P_SWITCH + P_STALL + P_PAUSE + P_SEEK + P_ERROR:
            self.emit("error", position, error_code="frag_load_timeout", error_message="retried")

    def requests(self) -> list[tuple[PlayerEvent, ...]]:
        if self.offline:
            return [tuple(self.events)]
        return [(event,) for event in self.events]

    def deliveries(self, length: float) -> list[SegmentDelivery]:
        """The segments hls.js loaded: up to `BUFFER_S` past the furthest position."""
        count = math.ceil(min(length, self.furthest_s + BUFFER_S) / SEGMENT_S)
        return [
            SegmentDelivery(
                session_id=self.session_id,
                track_id=self.track_id,
                version="v1",
                rendition=self.rendition,
                name=f"{self.rendition}/seg_{index:05d}.m4s",
                start_s=index * SEGMENT_S,
                duration_s=SEGMENT_S,
                delivered_ms=self.start_ms + index * 1000,
            )
            for index in range(count)
        ]


def build_workload(
    prefix: str,
    sessions: int,
    listeners: int,
    *,
    seed: int,
    start_ms: int,
    deliveries: bool = True,
) -> Workload:
    """`sessions` sessions named `<prefix>-<n>`, played by `listeners` players at once."""
    if sessions < 1 or listeners < 1:
        raise ValueError(f"sessions ({sessions}) and listeners ({listeners}) must be >= 1")
    rng = random.Random(seed)
    scripts: list[list[tuple[PlayerEvent, ...]]] = []
    counts: dict[str, int] = {}
    delivered: list[SegmentDelivery] = []
    for n in range(sessions):
        session = _Session(rng, f"{prefix}-{n:06d}", f"trk-{rng.randrange(TRACKS):04d}", start_ms)
        length = session.play()
        scripts.append(session.requests())
        counts[session.session_id] = len(session.events)
        if deliveries:
            delivered.extend(session.deliveries(length))
    return Workload(tuple(interleave(scripts, listeners, rng)), counts, tuple(delivered))


def interleave(scripts: list[list[T]], listeners: int, rng: random.Random) -> list[T]:
    """The sessions' requests as `listeners` players send them at once, each in its order.

    A player sends its session's requests one by one and starts the next session when one
    ends; which player sends next is drawn at random.
    """
    waiting = iter(scripts)
    playing: list[list[T]] = []
    for script in waiting:
        playing.append(script[::-1])  # popped from the end
        if len(playing) == listeners:
            break
    out: list[T] = []
    while playing:
        slot = rng.randrange(len(playing))
        out.append(playing[slot].pop())
        if not playing[slot]:
            following = next(waiting, None)
            if following is None:
                playing[slot] = playing[-1]
                playing.pop()
            else:
                playing[slot] = following[::-1]
    return out
