"""Fixtures for telemetry over HTTP: the edge's app over a store that can fail or block.

The edge fixtures (clock, keys, a published track, the app and its client) come from
tests/edge/conftest.py; here the track is long enough for a royalty play (8 segments of 6 s)
and names its creator, and the session store is a `FlakyStore`.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Awaitable, Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from aiohttp import web

from cdn_edge.state import TELEMETRY
from drm import KeyRing
from manifests import parse_media
from streamer.errors import StorageError
from streamer.sessions.port import PlaybackSession, PlayRecount
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.settings import Settings
from streamer.telemetry.model import (
    PlayClaim,
    PlayerEvent,
    SegmentDelivery,
    SessionTelemetry,
    TelemetryBatch,
)
from tests.edge import conftest as edge
from tests.edge.builders import BuiltTrack, build_track
from tests.edge.conftest import Client, ManualClock

# The edge's fixtures, shared with its tests (this package overrides track and session_store).
access_log_stream = edge.access_log_stream
client = edge.client
clock = edge.clock
edge_app = edge.edge_app
edge_secrets = edge.edge_secrets
hls_dir = edge.hls_dir
listener_token = edge.listener_token
open_session = edge.open_session
reader = edge.reader
ring = edge.ring
store = edge.store

CREATOR = "creator-1"
SEGMENTS = 8
SEGMENT_S = 6.0


class FlakyStore:
    """A SQLite session store that fails (`down`) or waits for `gate` when told to."""

    telemetry_batch_items = SQLiteSessionStore.telemetry_batch_items

    def __init__(self, path: Path) -> None:
        self.inner = SQLiteSessionStore(path)
        self.down = False
        self.gate = threading.Event()
        self.gate.set()  # open: calls go straight through
        self.telemetry_writes = 0

    def _check(self) -> None:
        if not self.gate.wait(timeout=10):
            raise StorageError("test gate stayed closed")
        if self.down:
            raise StorageError("the test store is down")

    def record_session(self, session: PlaybackSession) -> None:
        self._check()
        self.inner.record_session(session)

    def get_session(self, session_id: str) -> PlaybackSession | None:
        self._check()
        return self.inner.get_session(session_id)

    def write_telemetry(self, batch: TelemetryBatch) -> None:
        self._check()
        self.telemetry_writes += 1
        self.inner.write_telemetry(batch)

    def session_telemetry(self, session_id: str) -> SessionTelemetry:
        self._check()
        return self.inner.session_telemetry(session_id)

    def events_of(self, session_ids: Sequence[str]) -> dict[str, tuple[PlayerEvent, ...]]:
        self._check()
        return self.inner.events_of(session_ids)

    def deliveries_of(self, session_ids: Sequence[str]) -> dict[str, tuple[SegmentDelivery, ...]]:
        self._check()
        return self.inner.deliveries_of(session_ids)

    def claim_plays(self, plays: Sequence[PlayClaim]) -> tuple[PlayClaim, ...]:
        self._check()
        return self.inner.claim_plays(plays)

    def plays_by_day(self, track_id: str, first: date, last: date) -> dict[date, int]:
        self._check()
        return self.inner.plays_by_day(track_id, first, last)

    def recount_plays(self, track_id: str, day: date) -> PlayRecount:
        self._check()
        return self.inner.recount_plays(track_id, day)

    def recount_due(self, day: date) -> tuple[PlayRecount, ...]:
        self._check()
        return self.inner.recount_due(day)

    def close(self) -> None:
        self.gate.set()
        self.inner.close()


@pytest.fixture
def track(ring: KeyRing) -> BuiltTrack:
    built = build_track(ring, "trk1", "v1", segments=SEGMENTS, segment_s=SEGMENT_S)
    record = dataclasses.replace(built.record, metadata={"submitted_by": CREATOR})
    return dataclasses.replace(built, record=record)


@pytest.fixture
def session_store(tmp_path: Path) -> FlakyStore:
    return FlakyStore(tmp_path / "sessions.sqlite3")


async def drain(app: web.Application, clock: ManualClock, rounds: int = 20) -> None:
    """Write everything the telemetry writer holds, moving the clock past any backoff."""
    writer = app[TELEMETRY]
    for _ in range(rounds):
        if not writer.held:
            return
        if not await writer.flush():
            clock.advance(60)
    raise AssertionError(f"the writer still holds {writer.held} items")


@dataclasses.dataclass
class Playback:
    """An open session and the URLs a player would fetch for one rendition."""

    doc: dict[str, Any]
    token: str  # the session token, from the playlist URL
    playlist: str  # path of the media playlist
    key: str  # path of its first key
    segments: list[str]  # paths of its media segments, in order
    init: str


OpenPlayback = Callable[..., Awaitable[Playback]]


@pytest.fixture
def open_playback(client: Client, open_session: Any, settings: Settings) -> OpenPlayback:
    async def open_(tier: str = "free", rendition: str = "aac_96", **device: Any) -> Playback:
        doc = await open_session(tier, **device)
        main_url = doc["playlist_url"]
        token = urlsplit(main_url).path.split("/")[3]
        media_url = urljoin(main_url, f"{rendition}/playlist.m3u8")
        response = await client.get(_path(settings, media_url))
        assert response.status == 200, await response.text()
        media = parse_media(await response.text())
        segments = [_path(settings, urljoin(media_url, s.uri)) for s in media.segments]
        key_uri = next(s.key.uri for s in media.segments if s.key is not None and s.key.uri)
        init_uri = next(s.map.uri for s in media.segments if s.map is not None)
        return Playback(
            doc,
            token,
            _path(settings, media_url),
            _path(settings, urljoin(media_url, key_uri)),
            segments,
            _path(settings, urljoin(media_url, init_uri)),
        )

    return open_


def _path(settings: Settings, url: str) -> str:
    assert url.startswith(settings.base_url), url
    return url[len(settings.base_url) :]
