"""Builders for nginx access-log lines (the delivery tier's `escape=json` format) and a
published track the shipper can time segments against."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from drm import KeyRing, new_kek
from streamer.objects.local import LocalObjectStore
from tests.edge.builders import BuiltTrack, build_track, publish

T0 = 1_733_500_000.0  # 2024-12-06T15:46:40Z
SEGMENTS = 8  # 48 s: long enough for a royalty play (30 s)
SEGMENT_S = 6.0
_request_ids = itertools.count(1)


def request_id() -> str:
    return f"{next(_request_ids):032x}"


def fields(**overrides: Any) -> dict[str, Any]:
    """Every field nginx logs for a verified segment request, as strings."""
    rendition = overrides.get("rendition", "aac_160")
    obj = overrides.get("object", "seg_00000.m4s")
    values: dict[str, Any] = {
        "ts": f"{T0:.3f}",
        "status": "200",
        "bytes": "3000",
        "request_time": "0.002",
        "method": "GET",
        "uri": f"/v1/s/-/{rendition}/{obj}",
        "session_id": "s1",
        "track_id": "trk1",
        "version": "v1",
        "tier": "premium",
        "rendition": rendition,
        "object": obj,
        "cmcd_query": "",
        "cmcd_object": "",
        "cmcd_request": "",
        "cmcd_session": "",
        "cmcd_status": "",
        "range": "",
        "request_id": request_id(),
        "user_agent": "Mozilla/5.0 hls.js",
        "connection": "7",
        "connection_requests": "3",
    }
    values.update(overrides)
    return values


def line(**overrides: Any) -> bytes:
    """One complete log line, newline included."""
    return json.dumps(fields(**overrides), separators=(",", ":")).encode() + b"\n"


def session_lines(session_id: str, count: int = SEGMENTS, *, t0: float = T0, **extra: Any):
    """A session fetching its first `count` media segments, one a second."""
    return [
        line(
            session_id=session_id,
            object=f"seg_{i:05d}.m4s",
            ts=f"{t0 + i:.3f}",
            cmcd_query=f"bl%3D{1000 * i}%2Cbr%3D160%2Cot%3Da%2Csid%3D%22{session_id}%22",
            **extra,
        )
        for i in range(count)
    ]


def published_track(data_dir: Path) -> BuiltTrack:
    """trk1 v1 in the local object store under `data_dir` (as `streamer logship` reads it)."""
    kek = new_kek("kek-logship")
    built = build_track(
        KeyRing(kek.kek_id, (kek,)), "trk1", "v1", segments=SEGMENTS, segment_s=SEGMENT_S
    )
    publish(LocalObjectStore(data_dir / "objects"), built)
    return built
