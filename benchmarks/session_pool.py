"""Sessions opened as a player opens them, and the URLs they yield: the rate phases' pools.

Each session: POST /v1/sessions, the multivariant playlist, the media playlist of one
rendition; its media playlist, first key and segment URLs are kept, with the CMCD a playing
hls.js would add (unless turned off). None of this is measured.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from benchmarks.context import Target
from benchmarks.player import (
    OT_AUDIO,
    OT_KEY,
    OT_MANIFEST,
    CmcdKeys,
    PlayerState,
    parse_media_playlist,
    variant_uris,
    with_cmcd,
)
from benchmarks.progress import ProgressLine

SETUP_CONCURRENCY = 32
SETUP_REQUEST_TIMEOUT_S = 30.0
HLSJS_BUFFER_MS = 30_000  # what a playing hls.js reports as its buffer (bl)


@dataclass
class SessionUrls:
    media_url: str
    key_url: str
    init_url: str | None
    segment_urls: list[str] = field(default_factory=list)


async def _open_one(
    http: aiohttp.ClientSession,
    target: Target,
    token: str,
    rendition: str,
    codecs: Sequence[str],
    cmcd: bool,
) -> SessionUrls:
    body = {"track_id": target.track_id, "device": {"codecs": list(codecs)}}
    async with http.post(
        f"{target.url}/v1/sessions", json=body, headers={"Authorization": f"Bearer {token}"}
    ) as response:
        if response.status != 201:
            raise RuntimeError(
                f"POST /v1/sessions answered {response.status}: {(await response.text())[:300]}"
            )
        doc = await response.json()
    main_url = doc["playlist_url"]
    async with http.get(main_url) as response:
        response.raise_for_status()
        variants = variant_uris(await response.text(), main_url)
    if rendition not in variants:
        raise RuntimeError(
            f"rendition {rendition} is not offered to this listener; offered: {sorted(variants)}"
        )
    media_url = variants[rendition]
    async with http.get(media_url) as response:
        response.raise_for_status()
        playlist = parse_media_playlist(await response.text(), media_url)
    key_url = next((s.key_url for s in playlist.segments if s.key_url), None)
    if key_url is None:
        raise RuntimeError(f"{rendition} has no EXT-X-KEY: nothing to measure key issuance on")
    bitrate = int(doc["start_variant"]["bitrate_kbps"])
    state = PlayerState(doc["session_id"], target.track_id, rendition, bitrate, bitrate)
    state.started = True

    def url_for(url: str, keys: CmcdKeys) -> str:
        return with_cmcd(url, keys) if cmcd else url

    segments = [
        url_for(s.url, state.cmcd(OT_AUDIO, d=round(s.duration_s * 1000), bl=HLSJS_BUFFER_MS))
        for s in playlist.segments
    ]
    return SessionUrls(
        media_url=url_for(media_url, state.cmcd(OT_MANIFEST)),
        key_url=url_for(key_url, state.cmcd(OT_KEY)),
        init_url=playlist.init_url,
        segment_urls=segments,
    )


async def open_sessions(
    target: Target,
    count: int,
    rendition: str,
    codecs: Sequence[str],
    cmcd: bool,
    progress: ProgressLine,
) -> list[SessionUrls]:
    """`count` sessions, opened `SETUP_CONCURRENCY` at a time; the segments of the first are
    fetched once, so the edge's segment cache is warm."""
    tokens = target.tokens(count)
    out: list[SessionUrls | None] = [None] * count
    connector = aiohttp.TCPConnector(limit=SETUP_CONCURRENCY)
    started = time.monotonic()
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=SETUP_REQUEST_TIMEOUT_S)
    ) as http:
        queue = iter(range(count))
        done = 0

        async def worker() -> None:
            nonlocal done
            for i in queue:
                out[i] = await _open_one(http, target, tokens[i], rendition, codecs, cmcd)
                done += 1
                progress.show(f"setup: {count} sessions", time.monotonic() - started, 0, done, 0, 0)

        await asyncio.gather(*(worker() for _ in range(SETUP_CONCURRENCY)))
        # Warm the edge's segment cache: "cached segment delivery" is what is measured.
        first = out[0]
        if first is not None:
            for url in [first.init_url, *first.segment_urls]:
                if url:
                    async with http.get(url) as response:
                        await response.read()
    progress.clear()
    return [s for s in out if s is not None]
