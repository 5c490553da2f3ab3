"""What the vegeta paced run asks for, in order: its targets files, built without sockets.

One rendition's media playlist is the same body for every session (the session token is in the
URL path, every URI in it is relative), so it is parsed once against a URL with a placeholder
token, and each listener's URLs are that template with its token and CMCD session id put in.

The paced attack reads its targets in step order: for each segment index k, for each listener
i, the requests listener i makes at k —

    k = 0           media playlist, init segment, key, segment 0
    new key at k    key, segment k
    otherwise       segment k

— so with the attack at an even rate, each listener asks for one segment every segment
duration, as a real-time player does once its buffer is full, and its starts are staggered
across the first step. The events attack posts a heartbeat per listener every `heartbeat_s` of
audio, in the same listener order.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from benchmarks.player import (
    OT_AUDIO,
    OT_INIT,
    OT_KEY,
    OT_MANIFEST,
    CmcdKeys,
    PlayerState,
    event,
    parse_media_playlist,
    with_cmcd,
)

# Placeholders in the template URLs: '@' is not in base64url (tokens), and a UUID is hex and
# dashes; the CMCD one is URL-encoded with the rest of the CMCD value, so it stays alphanumeric.
TOKEN_SLOT = "@TOKEN@"
SID_SLOT = "SIDxSLOT"
HLSJS_BUFFER_MS = 30_000  # the bl a playing hls.js reports once its buffer is full
HEARTBEAT_S = 30.0  # benchmarks.paced: a heartbeat every 30 s of audio

# Request kinds (the report's endpoint classes).
PLAYLIST, INIT, KEY, SEGMENT, EVENTS = "playlist", "init", "key", "segment", "events"


@dataclass(frozen=True)
class Listener:
    session_id: str
    session_token: str  # the token in the session's playlist URL path
    cmcd_sid: str  # the player's own CMCD session id (hls.js makes a UUID)


@dataclass(frozen=True)
class Request:
    kind: str
    url: str


@dataclass(frozen=True)
class PacedTemplates:
    """Per segment index, the (kind, URL template) a listener asks for at that step."""

    steps: tuple[tuple[tuple[str, str], ...], ...]
    durations_s: tuple[float, ...]  # of each step's segment

    def phase_s(self, steps: int) -> float:
        """How long `steps` steps last in real time: their segments' durations."""
        return sum(self.durations_s[:steps])


def media_playlist_url(base_url: str, token: str, rendition: str) -> str:
    return f"{base_url}/v1/s/{token}/{rendition}/playlist.m3u8"


def bitrate_of(rendition: str) -> int | None:
    """The nominal kbps in a rendition name such as aac_160 (None for flac)."""
    match = re.fullmatch(r"[a-z0-9]+_(\d+)", rendition)
    return int(match.group(1)) if match else None


def paced_templates(
    base_url: str,
    rendition: str,
    playlist_text: str,
    track_id: str,
    cmcd: bool = True,
) -> PacedTemplates:
    """The step templates of one rendition from its media playlist's text."""
    media = media_playlist_url(base_url, TOKEN_SLOT, rendition)
    view = parse_media_playlist(playlist_text, media)
    kbps = bitrate_of(rendition) or 0
    state = PlayerState("", track_id, rendition, kbps, kbps, cmcd_sid=SID_SLOT)

    def url(plain: str, keys: CmcdKeys) -> str:
        return with_cmcd(plain, keys) if cmcd else plain

    steps: list[tuple[tuple[str, str], ...]] = []
    key_url: str | None = None
    segments = view.segments
    for k, segment in enumerate(segments):
        state.started = k > 0
        state.buffer_ms = HLSJS_BUFFER_MS if k > 0 else 0
        step: list[tuple[str, str]] = []
        if k == 0:
            step.append((PLAYLIST, url(media, state.cmcd(OT_MANIFEST))))
            if view.init_url is not None:
                step.append((INIT, url(view.init_url, state.cmcd(OT_INIT))))
        if segment.key_url is not None and segment.key_url != key_url:
            step.append((KEY, url(segment.key_url, state.cmcd(OT_KEY))))
        key_url = segment.key_url
        nxt = segments[k + 1].url.rsplit("/", 1)[1] if k + 1 < len(segments) else None
        keys = state.cmcd(OT_AUDIO, d=round(segment.duration_s * 1000), nor=nxt)
        step.append((SEGMENT, url(segment.url, keys)))
        steps.append(tuple(step))
    return PacedTemplates(tuple(steps), tuple(s.duration_s for s in segments))


def steps_within(templates: PacedTemplates, duration_s: float) -> int:
    """The whole segments (at least one) that fit in `duration_s`, up to the track's end."""
    elapsed, steps = 0.0, 0
    for seconds in templates.durations_s:
        # Half a segment of slack: 30 segments of 6.0139 s and 5.9907 s are a 180 s run.
        if steps and elapsed + seconds > duration_s + seconds / 2:
            break
        elapsed += seconds
        steps += 1
    return steps


def paced_requests(
    templates: PacedTemplates, listeners: Sequence[Listener], steps: int
) -> Iterator[Request]:
    """Every listener's requests of the first `steps` steps, in step order."""
    for step in templates.steps[:steps]:
        for listener in listeners:
            for kind, template in step:
                yield Request(
                    kind,
                    template.replace(TOKEN_SLOT, listener.session_token).replace(
                        SID_SLOT, listener.cmcd_sid
                    ),
                )


def http_targets(requests: Iterable[Request]) -> Iterator[str]:
    """vegeta's http targets format: a request line, no headers, a blank line."""
    for request in requests:
        yield f"GET {request.url}\n\n"


def heartbeat_targets(
    base_url: str,
    listeners: Sequence[Listener],
    phase_s: float,
    start_ms: int,
    heartbeat_s: float = HEARTBEAT_S,
) -> Iterator[str]:
    """vegeta JSON targets: the heartbeats the listeners post over `phase_s`, a listener's
    n-th (seq n) at n * heartbeat_s of audio; a distinct event id in every body."""
    n = len(listeners)
    count = int(n * phase_s / heartbeat_s)  # the rate is n / heartbeat_s for phase_s
    for index in range(count):
        beat, i = divmod(index, n)
        listener = listeners[i]
        due_s = beat * heartbeat_s + i * heartbeat_s / n  # when the attack sends it
        doc = event("heartbeat", start_ms + round(due_s * 1000), (beat + 1) * heartbeat_s, beat + 1)
        body = json.dumps({"events": [doc]}, separators=(",", ":")).encode()
        target = {
            "method": "POST",
            "url": f"{base_url}/v1/sessions/{listener.session_id}/events",
            "body": base64.b64encode(body).decode(),
            "header": {
                "Authorization": [f"Bearer {listener.session_token}"],
                "Content-Type": ["application/json"],
            },
        }
        yield json.dumps(target, separators=(",", ":")) + "\n"


def vegeta_rate(requests: int, seconds: float) -> str:
    """`requests` spread evenly over `seconds`, as vegeta's -rate (a whole count per span)."""
    if requests < 1 or seconds <= 0:
        raise ValueError(f"a rate needs requests >= 1 and seconds > 0, got {requests}, {seconds}")
    return f"{requests}/{max(1, round(seconds * 1000))}ms"
