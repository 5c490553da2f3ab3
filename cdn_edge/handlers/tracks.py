"""GET /v1/tracks: the published tracks, for the player page's list.

    {"tracks": [{"track_id": "...", "version": "...", "title": "...", "duration_s": 25.0,
                 "loudness": {"gain_db": -3.1, "integrated_lufs": -10.9, "target_lufs": -14.0}}],
     "truncated": false}

A scan of the store's `tracks/` keys for `tracks/{id}/current.json` records, run in one thread
and kept for `LIST_TTL_S`: a development and demo catalog, not a catalog service (the object
store interface can only list every key under a prefix, segments included, so a scan costs
about one listed key per segment). Past `MAX_TRACKS` records the list stops and says so.

The list needs a listener token, like everything else a listener asks the edge for: it
enumerates track ids and the scan costs store calls, so anonymous callers get neither. Every
tier sees the same list (entitlement is per rendition, decided when a session opens).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from cdn_edge.blocking import BlockingRunner
from cdn_edge.state import LISTENERS
from streamer.catalog import TrackRecord, decode_track_record
from streamer.errors import CatalogError, ObjectNotFound
from streamer.objects.port import ObjectReader

logger = logging.getLogger(__name__)

LIST_TTL_S = 10.0  # a newly published track shows up in the list within this
MAX_TRACKS = 500  # records read per scan; a player page lists no more
SCAN_TIMEOUT_S = 30.0  # listing a large local store walks every version directory
TRACKS_PREFIX = "tracks/"
CURRENT_RECORD = "current.json"
TRACKS_CACHE_CONTROL = "private, max-age=10"


@dataclass(frozen=True)
class TrackSummary:
    """What the list shows of a published track."""

    track_id: str
    version: str
    title: str
    duration_s: float
    gain_db: float
    integrated_lufs: float
    target_lufs: float


def summarise(record: TrackRecord) -> TrackSummary:
    title = record.metadata.get("title")
    return TrackSummary(
        track_id=record.track_id,
        version=record.version,
        title=title if isinstance(title, str) and title else record.track_id,
        duration_s=record.duration_s,
        gain_db=record.loudness.playback_gain_db,
        integrated_lufs=record.loudness.integrated_lufs,
        target_lufs=record.loudness.target_lufs,
    )


def scan_tracks(reader: ObjectReader, limit: int) -> tuple[list[TrackSummary], bool]:
    """Summaries of the current records under `tracks/`, and whether `limit` cut the list.

    Blocking: runs in a thread. A record removed or unreadable mid-scan is skipped.
    """
    summaries: list[TrackSummary] = []
    for key in reader.list(TRACKS_PREFIX):
        parts = key.split("/")
        if len(parts) != 3 or parts[2] != CURRENT_RECORD:
            continue
        if len(summaries) >= limit:
            return summaries, True
        try:
            record = decode_track_record(reader.get(key))
        except ObjectNotFound:
            continue  # unpublished between the list and the read
        except CatalogError as exc:
            logger.warning("track list skips %s: %s", key, exc)
            continue
        summaries.append(summarise(record))
    return summaries, False


def listing_body(summaries: list[TrackSummary], truncated: bool) -> bytes:
    tracks: list[dict[str, Any]] = [
        {
            "track_id": s.track_id,
            "version": s.version,
            "title": s.title,
            "duration_s": s.duration_s,
            "loudness": {
                "gain_db": s.gain_db,
                "integrated_lufs": s.integrated_lufs,
                "target_lufs": s.target_lufs,
            },
        }
        for s in summaries
    ]
    return json.dumps({"tracks": tracks, "truncated": truncated}).encode()


class TrackList:
    """The scanned list as a ready JSON body, rescanned at most once per `ttl_s`."""

    def __init__(
        self,
        reader: ObjectReader,
        run_blocking: BlockingRunner,
        clock: Callable[[], float],
        *,
        ttl_s: float = LIST_TTL_S,
        limit: int = MAX_TRACKS,
    ) -> None:
        self._reader = reader
        self._run = run_blocking
        self._clock = clock
        self._ttl_s = ttl_s
        self._limit = limit
        self._body: bytes | None = None
        self._expires = 0.0
        # One scan at a time: requests arriving during a scan wait for it and share its result.
        self._lock = asyncio.Lock()

    async def body(self) -> bytes:
        """The list as JSON. Raises Unavailable (503) if the scan outlasts its deadline."""
        async with self._lock:
            if self._body is None or self._clock() >= self._expires:
                summaries, truncated = await self._run.within(
                    SCAN_TIMEOUT_S, lambda: scan_tracks(self._reader, self._limit)
                )
                self._body = listing_body(summaries, truncated)
                self._expires = self._clock() + self._ttl_s
            return self._body


TRACK_LIST = web.AppKey("track_list", TrackList)


async def list_tracks(request: web.Request) -> web.Response:
    app = request.app
    app[LISTENERS].verify_header(request.headers.get("Authorization"))
    body = await app[TRACK_LIST].body()
    return web.Response(
        body=body,
        content_type="application/json",
        headers={"Cache-Control": TRACKS_CACHE_CONTROL, "Vary": "Authorization"},
    )
