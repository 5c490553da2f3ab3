"""HLS Content Steering: which pathway a listener should use, and the steering manifest.

The order of PATHWAY-PRIORITY for one session is, key by key:

1. health: healthy pathways before unhealthy ones, so a failing CDN drops to the end with
   the next reload (within one TTL) and comes back when it recovers; it stays listed, as the
   last resort, since the player only ever uses pathways in the list.
2. region: pathways naming the listener's region, then those serving every region, then
   those meant for other regions.
3. weight: weighted rendezvous hashing on the session id. Each session gets a fixed random
   order in which pathway i comes first with probability w_i / sum(w), so load spreads by
   weight, a session does not hop between CDNs from one reload to the next, and removing a
   pathway only moves the sessions that were on it.

Apple's "HLS Content Steering Specification" and draft-pantos-hls-rfc8216bis 4.4.6.6 define
the manifest: a JSON object with VERSION 1, TTL (seconds), RELOAD-URI and PATHWAY-PRIORITY;
players add `_HLS_pathway` (the pathway in use) and `_HLS_throughput` (bit/s) to each reload.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdn_edge.steering.pathways import Pathway

STEERING_VERSION = 1  # the only version the specification defines
MAX_REPORTED_BPS = 10_000_000_000  # 10 Gbit/s: anything above is not a listener's link
# hls.js sends its configured default estimate (abrEwmaDefaultEstimate, 500 kbit/s) before it
# has measured a single fragment; that number is a guess, not a report.
HLS_JS_DEFAULT_ESTIMATE_BPS = 500_000
PATHWAY_PARAM = "_HLS_pathway"
THROUGHPUT_PARAM = "_HLS_throughput"
_PATHWAY_ID = re.compile(r"[A-Za-z0-9._\-]+")  # rfc8216bis 4.4.6.6
_HASH_SPAN = float(2**64)

# Region classes, best first.
IN_REGION, EVERY_REGION, OTHER_REGION = 0, 1, 2


def region_class(pathway: Pathway, region: str) -> int:
    """How well `pathway` fits a listener in `region` (upper case): lower is better."""
    if region in pathway.regions:
        return IN_REGION
    return EVERY_REGION if not pathway.regions else OTHER_REGION


def rendezvous_score(session_id: str, pathway: Pathway) -> float:
    """Weighted rendezvous score: the highest of a session's scores wins, w_i / sum(w) of
    the time (the "logarithmic method": -w / ln(u) with u uniform in (0, 1))."""
    digest = hashlib.blake2b(
        f"{session_id}\x00{pathway.id}".encode(), digest_size=8, person=b"steering"
    ).digest()
    uniform = (int.from_bytes(digest, "big") + 0.5) / _HASH_SPAN
    return -pathway.weight / math.log(uniform)


def pathway_priority(
    pathways: Sequence[Pathway], region: str, unhealthy: frozenset[str], session_id: str
) -> tuple[str, ...]:
    """Every pathway id, best first, for this session (see the module docstring)."""
    region = region.upper()
    ranked = sorted(
        pathways,
        key=lambda p: (
            p.id in unhealthy,
            region_class(p, region),
            -rendezvous_score(session_id, p),
            p.id,
        ),
    )
    return tuple(p.id for p in ranked)


# EXT-X-CONTENT-STEERING's steering manifest (HLS Content Steering Specification, "Steering
# Manifest"); PATHWAY-CLONES is not used: every pathway is listed in the playlist.
@dataclass(frozen=True)
class SteeringManifest:
    ttl_s: int
    reload_uri: str
    pathway_priority: tuple[str, ...]

    def __post_init__(self) -> None:
        if isinstance(self.ttl_s, bool) or not isinstance(self.ttl_s, int) or self.ttl_s < 1:
            raise ValueError(f"steering TTL must be a whole number of seconds >= 1: {self.ttl_s!r}")
        if not self.reload_uri.startswith(("http://", "https://")):
            raise ValueError(f"RELOAD-URI {self.reload_uri!r} is not an absolute http(s) URI")
        if not self.pathway_priority:
            raise ValueError("PATHWAY-PRIORITY must name at least one pathway")
        if len(set(self.pathway_priority)) != len(self.pathway_priority):
            raise ValueError(f"PATHWAY-PRIORITY repeats a pathway: {self.pathway_priority}")
        for pathway_id in self.pathway_priority:
            if not _PATHWAY_ID.fullmatch(pathway_id):
                raise ValueError(f"PATHWAY-PRIORITY entry {pathway_id!r} is not a Pathway ID")


def steering_document(manifest: SteeringManifest) -> dict[str, Any]:
    """The manifest as the JSON object players read."""
    return {
        "VERSION": STEERING_VERSION,
        "TTL": manifest.ttl_s,
        "RELOAD-URI": manifest.reload_uri,
        "PATHWAY-PRIORITY": list(manifest.pathway_priority),
    }


@dataclass(frozen=True)
class SteeringReport:
    """What a steering reload says about the player: its pathway and throughput."""

    pathway_id: str | None = None
    throughput_bps: int | None = None


def parse_report(query: Mapping[str, str], known_ids: frozenset[str]) -> SteeringReport:
    """The reload's `_HLS_pathway` and `_HLS_throughput`; anything unusable reads as absent.

    These come from players and only inform a decision, so a bad value never fails the
    request: the listener still gets its manifest.
    """
    pathway_id = query.get(PATHWAY_PARAM)
    if pathway_id not in known_ids:
        pathway_id = None
    throughput = None
    raw = query.get(THROUGHPUT_PARAM)
    if raw is not None and len(raw) <= 32:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if 0 < value <= MAX_REPORTED_BPS and int(value) != HLS_JS_DEFAULT_ESTIMATE_BPS:
            throughput = int(value)
    return SteeringReport(pathway_id, throughput)
