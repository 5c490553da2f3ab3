"""What a simulated player says and reads: CMCD query arguments, URLs, playlists, events.

Pure functions, no sockets: the load client feeds them responses and sends what they build.
The CMCD follows hls.js in query mode (CTA-5004 version 1): keys sorted, true flags bare,
strings quoted, `ot`/`sf`/`st` as tokens, the dictionary URL-encoded into one `CMCD=` argument.
"""

from __future__ import annotations

import posixpath
import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import quote, urljoin, urlsplit

CMCD_PARAM = "CMCD"  # CTA-5004 section 2, query argument transmission
_TOKEN_KEYS = frozenset({"ot", "sf", "st"})  # CTA-5004: values are Tokens, not Strings
_ATTR = re.compile(r'([A-Z0-9-]+)=("[^"]*"|[^,]*)')

# CTA-5004 object types the simulated player asks for.
OT_MANIFEST = "m"
OT_KEY = "k"
OT_INIT = "i"
OT_AUDIO = "a"

CmcdKeys = dict[str, int | float | str | bool | None]


def encode_cmcd(keys: CmcdKeys) -> str:
    """A CMCD dictionary as hls.js serialises it: sorted, no spaces, falsy flags left out."""
    parts = []
    for key in sorted(keys):
        value = keys[key]
        if value is None or value is False:
            continue
        if value is True:
            parts.append(key)
        elif key in _TOKEN_KEYS:
            parts.append(f"{key}={value}")
        elif isinstance(value, str):
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'{key}="{escaped}"')
        elif isinstance(value, float):
            # RFC 8941 decimals: at most three fractional digits.
            parts.append(f"{key}={round(value, 3)}")
        else:
            parts.append(f"{key}={int(value)}")
    return ",".join(parts)


def with_cmcd(url: str, keys: CmcdKeys) -> str:
    """`url` with the CMCD query argument appended (URL-encoded like URLSearchParams)."""
    text = encode_cmcd(keys)
    if not text:
        return url
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{CMCD_PARAM}={quote(text, safe='')}"


def resolve(base_url: str, uri: str) -> str:
    """A playlist URI resolved against the playlist's URL (RFC 8216 4.1, RFC 3986 5)."""
    return urljoin(base_url, uri)


def relative_to(target: str, current: str) -> str:
    """`target` relative to `current`, query kept: hls.js's `nor` (next object request)."""
    # Consecutive segments sit in one directory: the name and query, without parsing URLs
    # (this runs for every segment a paced listener fetches).
    directory = current[: current.rfind("/", 0, _path_end(current)) + 1]
    rest = target[len(directory) :]
    if directory and target.startswith(directory) and "/" not in rest[: _path_end(rest)]:
        return rest
    t, c = urlsplit(target), urlsplit(current)
    if (t.scheme, t.netloc) != (c.scheme, c.netloc):
        return target
    path = posixpath.relpath(t.path, posixpath.dirname(c.path) or "/")
    return f"{path}?{t.query}" if t.query else path


def _path_end(url: str) -> int:
    end = url.find("?")
    return len(url) if end < 0 else end


@dataclass(frozen=True)
class MediaSegment:
    url: str  # absolute
    duration_s: float
    key_url: str | None  # absolute; None for a clear segment


@dataclass(frozen=True)
class MediaPlaylistView:
    """The little of a media playlist a player needs to play it from the start."""

    init_url: str | None
    segments: tuple[MediaSegment, ...]
    target_duration_s: float

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.segments)


def _attributes(text: str) -> dict[str, str]:
    return {name: value.strip('"') for name, value in _ATTR.findall(text)}


def parse_media_playlist(text: str, url: str) -> MediaPlaylistView:
    """EXT-X-MAP, EXT-X-KEY, EXTINF and URI lines of a media playlist (RFC 8216 4.3)."""
    if not text.startswith("#EXTM3U"):
        raise ValueError(f"{url} is not a playlist: it does not start with #EXTM3U")
    init_url: str | None = None
    key_url: str | None = None
    duration: float | None = None
    target = 0.0
    segments: list[MediaSegment] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",", 1)[0])
        elif line.startswith("#EXT-X-KEY:"):
            attrs = _attributes(line[11:])
            key_url = None if attrs.get("METHOD") == "NONE" else resolve(url, attrs["URI"])
        elif line.startswith("#EXT-X-MAP:"):
            init_url = resolve(url, _attributes(line[11:])["URI"])
        elif line.startswith("#EXT-X-TARGETDURATION:"):
            target = float(line[22:])
        elif not line.startswith("#"):
            if duration is None:
                raise ValueError(f"{url}: segment {line[:60]!r} has no #EXTINF before it")
            segments.append(MediaSegment(resolve(url, line), duration, key_url))
            duration = None
    if not segments:
        raise ValueError(f"{url} lists no segments")
    return MediaPlaylistView(init_url, tuple(segments), target)


def variant_uris(text: str, url: str) -> dict[str, str]:
    """STABLE-VARIANT-ID (or the URI's stem) to absolute media playlist URL (RFC 8216 4.3.4.2)."""
    out: dict[str, str] = {}
    pending: str | None = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-STREAM-INF:"):
            attrs = _attributes(line[18:])
            pending = attrs.get("STABLE-VARIANT-ID", "")
        elif line and not line.startswith("#") and pending is not None:
            path = urlsplit(line).path
            if posixpath.basename(path) == "playlist.m3u8":  # {rendition}/playlist.m3u8
                path = posixpath.dirname(path)
            name = pending or posixpath.splitext(posixpath.basename(path))[0]
            out.setdefault(name, resolve(url, line))
            pending = None
    if not out:
        raise ValueError(f"{url} lists no variants")
    return out


def session_token_of(playlist_url: str) -> str:
    """The session token in a playlist URL `.../v1/s/{token}/main.m3u8`."""
    parts = urlsplit(playlist_url).path.split("/")
    try:
        return parts[parts.index("s") + 1]
    except (ValueError, IndexError):
        raise ValueError(f"{playlist_url} is not a /v1/s/{{token}}/... URL") from None


@dataclass
class PlayerState:
    """Per-session values a player reports in CMCD and events."""

    session_id: str  # the edge's session id (events path)
    track_id: str
    rendition: str
    bitrate_kbps: int
    top_bitrate_kbps: int
    cmcd_sid: str = field(default_factory=lambda: str(uuid.uuid4()))  # the player's own id
    buffer_ms: int = 0
    throughput_kbps: int | None = None
    started: bool = False

    def cmcd(self, ot: str, **extra: int | float | str | bool | None) -> CmcdKeys:
        keys: CmcdKeys = {
            "cid": self.track_id,
            "sf": "h",
            "sid": self.cmcd_sid,
            "st": "v",
            "ot": ot,
            "mtp": self.throughput_kbps,
            "su": not self.started,
        }
        if ot == OT_AUDIO:
            keys.update(br=self.bitrate_kbps, tb=self.top_bitrate_kbps, bl=self.buffer_ms)
        keys.update(extra)
        return keys

    def observe_throughput(self, size_bytes: int, seconds: float) -> None:
        if seconds > 0 and size_bytes > 0:
            kbps = round(size_bytes * 8 / seconds / 1000)
            # hls.js rounds mtp to the nearest 100 kbps
            self.throughput_kbps = max(100, round(kbps, -2))


def event(
    kind: str, ts_ms: int, position_s: float, seq: int, **fields: int | float | str | bool
) -> dict[str, object]:
    """One event of POST /v1/sessions/{id}/events."""
    return {
        "event_id": uuid.uuid4().hex,
        "type": kind,
        "ts_ms": ts_ms,
        "position_s": round(position_s, 3),
        "seq": seq,
        **fields,
    }
