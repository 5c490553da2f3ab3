"""Common Media Server Data (CTA-5006, CMSD version 1): what the edge tells the player.

Two response headers on segments:

    CMSD-Static   an RFC 8941 dictionary about the object, the same for every listener (so
                  shared caches may keep it): ot, sf, st, d (duration, ms), br (kbps).
    CMSD-Dynamic  an RFC 8941 list with one entry per server on the path, each a string (the
                  server's identifier) with parameters about this response: etp (estimated
                  throughput, kbps), mb (maximum suggested bitrate, kbps), rd (response delay,
                  ms), rtt (ms), du (duress). It describes one hop; a CDN in front of the edge
                  appends or replaces its own entry and must not serve ours from its cache.

`mb` carries the session's ceiling: the free tier's 160 kbit/s, or less while the edge is
congested, so a player (CMSD-aware ABR) stays within what it is entitled to and what the edge
can carry. Rendering is pure; nothing here parses CMSD (the edge only writes it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from cdn_edge.policy.negotiation import FREE_TIER_MAX_KBPS
from cdn_edge.telemetry.structured_fields import BareItem, Token, serialize_bare_item
from streamer.catalog import Tier

STATIC_HEADER = "CMSD-Static"
DYNAMIC_HEADER = "CMSD-Dynamic"

ObjectType = Literal["m", "a", "v", "av", "i", "c", "tt", "k", "o"]
StreamingFormat = Literal["d", "h", "s", "o"]
StreamType = Literal["v", "l"]


@dataclass(frozen=True)
class CmsdStatic:
    """CMSD-Static keys the edge sets (CTA-5006 static keys); None where unknown."""

    ot: ObjectType | None = None  # object type: a audio segment, i init section
    sf: StreamingFormat | None = "h"  # HLS
    st: StreamType | None = "v"  # every published track is on demand
    d: int | None = None  # object duration, ms
    br: int | None = None  # encoded bitrate, kbps

    def __post_init__(self) -> None:
        for name, allowed in (
            ("ot", get_args(ObjectType)),
            ("sf", get_args(StreamingFormat)),
            ("st", get_args(StreamType)),
        ):
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise ValueError(f"CMSD-Static {name} must be one of {allowed}, got {value!r}")
        for name in ("d", "br"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value < 0):
                raise ValueError(f"CMSD-Static {name} must be an integer >= 0, got {value!r}")


@dataclass(frozen=True)
class CmsdDynamic:
    """One server's CMSD-Dynamic entry (CTA-5006 dynamic keys); None where not sent."""

    server: str  # the server's identifier, a quoted string
    etp: int | None = None  # estimated throughput to this client, kbps
    mb: int | None = None  # maximum suggested bitrate, kbps
    rd: int | None = None  # response delay: request received to first body byte, ms
    rtt: int | None = None  # estimated round trip time, ms
    du: bool = False  # duress: prefer another server

    def __post_init__(self) -> None:
        if not self.server or not all(0x20 <= ord(c) < 0x7F for c in self.server):
            raise ValueError(f"CMSD server id must be printable ASCII, got {self.server!r}")
        for name in ("etp", "mb", "rd", "rtt"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value < 0):
                raise ValueError(f"CMSD-Dynamic {name} must be an integer >= 0, got {value!r}")


_STATIC_TOKENS = ("ot", "sf", "st")
_STATIC_ORDER = ("ot", "sf", "st", "d", "br")
_DYNAMIC_ORDER = ("etp", "mb", "rd", "rtt")


def render_cmsd_static(static: CmsdStatic) -> str:
    """`ot=a,sf=h,st=v,d=6000,br=160`: the keys set, in that order."""
    parts = []
    for key in _STATIC_ORDER:
        value = getattr(static, key)
        if value is None:
            continue
        item: BareItem = Token(value) if key in _STATIC_TOKENS else value
        parts.append(f"{key}={serialize_bare_item(item)}")
    return ",".join(parts)


def render_cmsd_dynamic(entries: tuple[CmsdDynamic, ...]) -> str:
    """`"edge-1";etp=5400;mb=160;rd=2`: one entry per server, earliest first."""
    out = []
    for entry in entries:
        text = serialize_bare_item(entry.server)
        for key in _DYNAMIC_ORDER:
            value = getattr(entry, key)
            if value is not None:
                text += f";{key}={serialize_bare_item(value)}"
        if entry.du:
            text += ";du"  # a true boolean parameter is the bare key (RFC 8941 4.1.1.2)
        out.append(text)
    return ", ".join(out)


def max_suggested_bitrate(tier: Tier, congestion_kbps: int | None = None) -> int | None:
    """The `mb` for a session: its tier's ceiling and the congestion ceiling, the lower one."""
    caps = [FREE_TIER_MAX_KBPS] if tier == "free" else []
    if congestion_kbps is not None:
        caps.append(congestion_kbps)
    return min(caps) if caps else None
