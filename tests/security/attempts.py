"""The attack table's model: an `Attempt` is one request on the wire and whom it speaks for.

A `Principal` bounds what a 2xx may carry (see `material.py`); `leak_if_2xx` marks requests
whose success alone is the leak (a session opened with a forged token, another session's
telemetry read). The categories live in `attacks_*.py`; `table.py` puts them together.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from tests.security.material import NOBODY, Principal
from tests.security.world import Track, World

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Attempt:
    category: str
    name: str
    method: str
    target: str | bytes
    headers: Headers = ()
    body: bytes | None = None
    principal: Principal = NOBODY
    leak_if_2xx: bool = False


def fetch(
    category: str,
    name: str,
    target: str | bytes,
    principal: Principal = NOBODY,
    headers: Headers = (),
    method: str = "GET",
    body: bytes | None = None,
) -> Attempt:
    """A request whose 2xx may carry only what `principal` is entitled to."""
    return Attempt(category, name, method, target, headers, body, principal)


def refused(
    category: str,
    name: str,
    method: str,
    target: str,
    headers: Headers = (),
    body: bytes | None = None,
) -> Attempt:
    """A request that must not succeed at all: any 2xx is the leak."""
    return Attempt(category, name, method, target, headers, body, NOBODY, leak_if_2xx=True)


@dataclass(frozen=True)
class Session:
    token: str
    session_id: str
    principal: Principal


@dataclass
class Context:
    """What the table is built from: the world and the sessions opened through one front."""

    world: World
    sessions: dict[str, Session]  # "free-A", "premium-A", "free-B", "premium-B", ...
    job_id: str
    bearer: dict[str, str] = field(default_factory=dict)  # kind -> genuine JWT

    def track(self, name: str) -> Track:
        return self.world.tracks[name]


def bearer(token: str) -> Headers:
    return (("Authorization", f"Bearer {token}"),)


JSON: Headers = (("Content-Type", "application/json"),)
PLAYS_QUERY = "from=2024-01-01&to=2024-01-31"


def session_body(track_id: str) -> bytes:
    device = {"codecs": ["mp4a.40.2", "opus", "fLaC"]}
    return json.dumps({"track_id": track_id, "device": device}).encode()


def event_body() -> bytes:
    event = {"event_id": "e-1", "type": "heartbeat", "ts_ms": int(time.time() * 1000)}
    return json.dumps({"events": [{**event, "position_s": 1.0}]}).encode()


def media_targets(token: str, track: Track, renditions: list[str], keys: list[str]) -> list[str]:
    """Every kind of media URL of a session: keys, init sections, segments, playlists."""
    targets = [f"/v1/s/{token}/keys/{kid}" for kid in keys]
    for rendition in renditions:
        base = f"/v1/s/{token}/{rendition}"
        targets.append(f"{base}/init.mp4")
        targets += [f"{base}/{name}" for name in track.segment_names(rendition)]
        targets.append(f"{base}/playlist.m3u8")
    return targets


def describe(attempt: Attempt) -> dict[str, Any]:
    target = attempt.target if isinstance(attempt.target, str) else repr(attempt.target)
    return {"category": attempt.category, "name": attempt.name, "target": target[:160]}
