"""Builders for player events and segment deliveries of one session."""

from __future__ import annotations

import itertools
from typing import Any

from streamer.telemetry.model import PlayerEvent, SegmentDelivery

T0_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z
_ids = itertools.count()


def event(kind: str, at_s: float, position_s: float, **fields: Any) -> PlayerEvent:
    """An event `at_s` seconds into the session (player's clock = edge's clock + 0)."""
    values: dict[str, Any] = {
        "session_id": "s1",
        "event_id": f"e{next(_ids)}",
        "type": kind,
        "track_id": "trk1",
        "client_ms": T0_MS + round(at_s * 1000),
        "received_ms": T0_MS + round(at_s * 1000),
        "position_s": position_s,
    }
    values.update(fields)
    return PlayerEvent(**values)


def listening(seconds: int, every_s: int = 10, start_s: float = 0.0, **fields: Any) -> list:
    """A play, then heartbeats every `every_s` for `seconds` of uninterrupted playback."""
    events = [event("play", start_s, 0.0, **fields)]
    for t in range(every_s, seconds + 1, every_s):
        events.append(event("heartbeat", start_s + t, float(t), **fields))
    return events


def deliveries(count: int, segment_s: float = 6.0, rendition: str = "aac_96", **fields: Any):
    """The first `count` media segments of a rendition, delivered to session s1."""
    values: dict[str, Any] = {"session_id": "s1", "track_id": "trk1", "version": "v1"}
    values.update(fields)
    return [
        SegmentDelivery(
            rendition=rendition,
            name=f"{rendition}/seg_{i:05d}.m4s",
            start_s=i * segment_s,
            duration_s=segment_s,
            delivered_ms=T0_MS + i * 1000,
            **values,
        )
        for i in range(count)
    ]
