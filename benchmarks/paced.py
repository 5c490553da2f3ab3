"""Real-time paced listeners: each one plays a track end to end as hls.js would.

    POST /v1/sessions -> multivariant playlist -> media playlist -> key -> init -> segments

Segments are loaded one after another while the buffer is short of `buffer_s` (hls.js's
maxBufferLength, 30 s), then one per segment duration, all `speed` times faster than real time
when testing. Every request carries CMCD in the query as hls.js sends it; the player posts a
`play` event after its first segment, a `heartbeat` every `heartbeat_s` of audio and `end` at the
end, then opens a new session (the next track). A track that fails on the way is abandoned and
the listener backs off (1 s, doubling to 30 s) before its next. Arrivals are spread evenly over
the ramp.

A segment that arrives after the moment it was due to play counts as a late segment (a stall).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

from benchmarks.load_client import CHECK_KEY, CHECK_PLAYLIST, Client, new_session, ticker
from benchmarks.player import (
    OT_AUDIO,
    OT_INIT,
    OT_KEY,
    OT_MANIFEST,
    CmcdKeys,
    PlayerState,
    event,
    parse_media_playlist,
    relative_to,
    session_token_of,
    variant_uris,
    with_cmcd,
)
from benchmarks.recording import Recording

DEFAULT_CODECS = ("mp4a.40.2", "opus")
HLSJS_BUFFER_S = 30.0  # hls.js maxBufferLength
HEARTBEAT_S = 30.0
# A listener whose track failed tries again after 1 s, doubling up to 30 s while it keeps
# failing, as a player app backs off: retrying at once would measure a retry storm.
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 30.0


@dataclass(frozen=True)
class PacedSpec:
    """One client process's listeners."""

    base_url: str
    track_id: str
    tokens: tuple[str, ...]  # one listener token per listener of this process
    offsets_s: tuple[float, ...]  # each listener's arrival after the start
    duration_s: float  # from the start to the end of the run, ramp included
    speed: float = 1.0
    buffer_s: float = HLSJS_BUFFER_S
    heartbeat_s: float = HEARTBEAT_S
    events: bool = True
    rendition: str | None = None  # default: the session's start variant
    codecs: tuple[str, ...] = DEFAULT_CODECS
    connections: int = 1000
    cmcd: bool = True  # CMCD in the query of playlist, key and segment requests


class Listener:
    def __init__(self, client: Client, spec: PacedSpec, token: str) -> None:
        self.client = client
        self.spec = spec
        self.token = token
        self.seq = 0

    def _url(self, url: str, keys: CmcdKeys) -> str:
        return with_cmcd(url, keys) if self.spec.cmcd else url

    def _now_ms(self) -> int:
        return int(time.time() * 1000)

    async def _post_events(self, state: PlayerState, session_token: str, *docs: Any) -> None:
        if not self.spec.events:
            return
        body = json.dumps({"events": list(docs)}).encode()
        await self.client.fetch(
            "events",
            f"{self.spec.base_url}/v1/sessions/{state.session_id}/events",
            method="POST",
            body=body,
            headers={
                "Authorization": f"Bearer {session_token}",
                "Content-Type": "application/json",
            },
        )

    def _event(self, kind: str, position_s: float, **fields: Any) -> dict[str, object]:
        self.seq += 1
        return event(kind, self._now_ms(), position_s, self.seq, **fields)

    async def play_track(self) -> bool:
        """One session from start to end; False if it failed on the way."""
        spec, client = self.spec, self.client
        setup_started = time.monotonic()
        answer = await client.fetch(
            "session",
            f"{spec.base_url}/v1/sessions",
            method="POST",
            body=json.dumps(
                {
                    "track_id": spec.track_id,
                    "device": {"codecs": list(spec.codecs), "network": "wifi"},
                }
            ).encode(),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        if answer is None:
            return False
        doc = json.loads(answer[1])
        main_url = doc["playlist_url"]
        session_token = session_token_of(main_url)
        rendition = spec.rendition or doc["start_variant"]["rendition"]
        state = PlayerState(
            session_id=doc["session_id"],
            track_id=spec.track_id,
            rendition=rendition,
            bitrate_kbps=int(doc["start_variant"]["bitrate_kbps"]),
            top_bitrate_kbps=int(doc["start_variant"]["bitrate_kbps"]),
        )
        main = await client.fetch(
            "multivariant", self._url(main_url, state.cmcd(OT_MANIFEST)), check=CHECK_PLAYLIST
        )
        if main is None:
            return False
        variants = variant_uris(main[1].decode(), main_url)
        media_url = variants.get(rendition)
        if media_url is None:
            client.recording.failure("multivariant", "rendition_not_offered", time.monotonic())
            return False
        media = await client.fetch(
            "playlist", self._url(media_url, state.cmcd(OT_MANIFEST)), check=CHECK_PLAYLIST
        )
        if media is None:
            return False
        playlist = parse_media_playlist(media[1].decode(), media_url)
        if playlist.init_url is not None:
            init = await client.fetch("init", self._url(playlist.init_url, state.cmcd(OT_INIT)))
            if init is None:
                return False
        return await self._segments(state, session_token, playlist, setup_started)

    async def _segments(
        self, state: PlayerState, session_token: str, playlist: Any, setup_started: float
    ) -> bool:
        """Play the segments in time; False when a key or segment failed (track abandoned)."""
        spec, client = self.spec, self.client
        speed = spec.speed
        key_url: str | None = None
        loaded_s = 0.0  # audio loaded so far
        play_started: float | None = None  # when the first segment arrived
        next_heartbeat = spec.heartbeat_s
        segments = playlist.segments
        for index, segment in enumerate(segments):
            # Wait while the buffer holds enough: playing position + buffer_s > loaded.
            if play_started is not None:
                position = (time.monotonic() - play_started) * speed
                wait = (loaded_s - spec.buffer_s - position) / speed
                if wait > 0:
                    await asyncio.sleep(wait)
                position = (time.monotonic() - play_started) * speed
                state.buffer_ms = max(0, round((loaded_s - position) * 1000))
            if segment.key_url is not None and segment.key_url != key_url:
                key = await client.fetch(
                    "key", self._url(segment.key_url, state.cmcd(OT_KEY)), check=CHECK_KEY
                )
                if key is None:
                    return False
                key_url = segment.key_url
            nxt = segments[index + 1].url if index + 1 < len(segments) else None
            url = self._url(
                segment.url,
                state.cmcd(
                    OT_AUDIO,
                    d=round(segment.duration_s * 1000),
                    nor=relative_to(nxt, segment.url) if nxt else None,
                ),
            )
            asked = time.monotonic()
            answer = await client.fetch("segment", url)
            arrived = time.monotonic()
            if answer is None:
                return False  # the player gives up on the track; the listener backs off
            state.observe_throughput(len(answer[1]), arrived - asked)
            if play_started is None:
                play_started = arrived
                state.started = True
                await self._post_events(
                    state,
                    session_token,
                    self._event(
                        "play",
                        0.0,
                        bitrate_kbps=state.bitrate_kbps,
                        rendition=state.rendition,
                        startup_ms=round((arrived - setup_started) * 1000),
                    ),
                )
            elif arrived > play_started + loaded_s / speed:
                client.recording.counters["late_segments"] += 1
            loaded_s += segment.duration_s
            position = (time.monotonic() - play_started) * speed
            if spec.heartbeat_s > 0 and position >= next_heartbeat:
                next_heartbeat += spec.heartbeat_s
                await self._post_events(state, session_token, self._event("heartbeat", position))
        if play_started is not None:
            # Play out the buffer, then report the end.
            remaining = (loaded_s - (time.monotonic() - play_started) * speed) / speed
            if remaining > 0:
                await asyncio.sleep(remaining)
            await self._post_events(state, session_token, self._event("end", loaded_s))
        return True

    async def run(self, start_at: float) -> None:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        backoff = RETRY_FIRST_S
        while True:
            try:
                played = await self.play_track()
            except (ValueError, KeyError, UnicodeDecodeError) as exc:
                # An answer the player cannot use (a malformed playlist or session document).
                self.client.recording.failure("listener", type(exc).__name__, time.monotonic())
                played = False
            if played:
                backoff = RETRY_FIRST_S
            else:
                await asyncio.sleep(backoff / self.spec.speed)
                backoff = min(RETRY_MAX_S, backoff * 2)


async def paced_main(spec: PacedSpec, started: float, progress: Any, slot: int) -> Recording:
    """One client process's listeners, from `started` for `spec.duration_s`."""
    recording = Recording(started)
    end = started + spec.duration_s
    async with new_session(spec.connections) as session:
        client = Client(session, recording)
        client.measure_from = started
        client.measure_until = end
        listeners = [Listener(client, spec, token) for token in spec.tokens]
        active = 0

        async def one(listener: Listener, offset: float) -> None:
            nonlocal active
            await asyncio.sleep(max(0.0, started + offset - time.monotonic()))
            active += 1
            try:
                await listener.run(started + offset)
            finally:
                active -= 1

        tasks = [
            asyncio.create_task(one(lis, off))
            for lis, off in zip(listeners, spec.offsets_s, strict=True)
        ]
        ticking = asyncio.create_task(ticker(client, progress, slot, end, lambda: active))
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        for task in [*tasks, ticking]:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, ticking, return_exceptions=True)
    return recording
