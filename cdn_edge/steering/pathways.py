"""The delivery pathways of HLS Content Steering: this edge and the CDNs in front of it.

A pathway is a base URL that serves the whole `/v1/s` tree of session paths (a CDN with this
edge as its origin, or another edge), the listener regions it is meant for, and a weight that
spreads sessions over pathways of equal standing. The edge itself is always the pathway
`edge` at `STREAMER_PUBLIC_URL`; `STREAMER_PATHWAYS` adds the others as JSON:

    [{"id": "cdn-a", "base_url": "https://a.example.net", "regions": ["SE", "NO"], "weight": 2},
     {"id": "edge", "regions": ["SE"], "weight": 1}]

An entry with the id `edge` sets the edge's own regions and weight (its URL stays
`STREAMER_PUBLIC_URL`). No regions means "serves every region".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from streamer.errors import ConfigError
from streamer.settings import Settings

EDGE_PATHWAY_ID = "edge"
ENV_NAME = "STREAMER_PATHWAYS"
MAX_PATHWAYS = 16  # every variant is listed once per pathway: keep multivariant playlists small
MAX_WEIGHT = 1000
MAX_STEERING_TTL_S = 24 * 3600  # a session outlives a day-long TTL only in theory
DEFAULT_WEIGHT = 1
# rfc8216bis 4.4.6.6: a Pathway ID is [a-zA-Z0-9.-_]; "." is the implicit default pathway.
_PATHWAY_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")
_REGION = re.compile(r"[A-Za-z0-9_\-]{1,16}")  # as listener tokens spell regions
_KNOWN_KEYS = frozenset({"id", "base_url", "regions", "weight"})


@dataclass(frozen=True)
class Pathway:
    """One way to the content: a base URL serving the /v1/s tree."""

    id: str
    base_url: str  # absolute, no trailing '/'
    regions: frozenset[str] = frozenset()  # upper case; empty: every region
    weight: int = DEFAULT_WEIGHT

    def __post_init__(self) -> None:
        if not _PATHWAY_ID.fullmatch(self.id) or self.id == ".":
            raise ValueError(f"pathway id {self.id!r} is not 1 to 64 of [a-zA-Z0-9.-_]")
        if not 1 <= self.weight <= MAX_WEIGHT:
            raise ValueError(f"pathway {self.id} weight {self.weight} is not 1 to {MAX_WEIGHT}")
        if self.base_url.endswith("/"):
            raise ValueError(f"pathway {self.id} base URL {self.base_url!r} ends with '/'")


def pathways_from_settings(settings: Settings) -> tuple[Pathway, ...]:
    """The configured pathways, with the steering TTL checked too (both fail at startup)."""
    if not 1 <= settings.steering_ttl_s <= MAX_STEERING_TTL_S:
        raise ConfigError(
            f"STREAMER_STEERING_TTL_S is {settings.steering_ttl_s}; use 1 to "
            f"{MAX_STEERING_TTL_S} seconds"
        )
    return parse_pathways(settings.pathways, settings.base_url)


def parse_pathways(text: str, edge_base_url: str) -> tuple[Pathway, ...]:
    """The edge pathway first, then the configured ones in order; ConfigError names the entry."""
    edge = Pathway(EDGE_PATHWAY_ID, _base_url(edge_base_url, "STREAMER_PUBLIC_URL"))
    if not text.strip():
        return (edge,)
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{ENV_NAME} is not JSON: {exc}") from exc
    if not isinstance(doc, list):
        raise ConfigError(
            f'{ENV_NAME} must be a JSON list of {{"id", "base_url", "regions", "weight"}} '
            f"objects, got {type(doc).__name__}"
        )
    if len(doc) > MAX_PATHWAYS:
        raise ConfigError(f"{ENV_NAME} lists {len(doc)} pathways; at most {MAX_PATHWAYS}")
    others: list[Pathway] = []
    seen: set[str] = set()
    for index, entry in enumerate(doc):
        pathway = _entry(index, entry, edge)
        if pathway.id in seen:
            raise ConfigError(f"{ENV_NAME}[{index}]: pathway id {pathway.id!r} is listed twice")
        seen.add(pathway.id)
        if pathway.id == EDGE_PATHWAY_ID:
            edge = pathway
        else:
            others.append(pathway)
    urls = {edge.base_url: edge.id}
    for pathway in others:
        if pathway.base_url in urls:
            raise ConfigError(
                f"{ENV_NAME}: pathways {urls[pathway.base_url]!r} and {pathway.id!r} share the "
                f"base URL {pathway.base_url}; a player could not tell them apart"
            )
        urls[pathway.base_url] = pathway.id
    return (edge, *others)


def _entry(index: int, entry: object, edge: Pathway) -> Pathway:
    where = f"{ENV_NAME}[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be an object, got {type(entry).__name__}")
    unknown = set(entry) - _KNOWN_KEYS
    if unknown:
        raise ConfigError(
            f"{where} has unknown keys {sorted(unknown)}; expected {sorted(_KNOWN_KEYS)}"
        )
    pathway_id = entry.get("id")
    if not isinstance(pathway_id, str) or not _PATHWAY_ID.fullmatch(pathway_id):
        raise ConfigError(
            f"{where}.id must be 1 to 64 of letters, digits, '.', '-', '_' "
            f"(an HLS Pathway ID), got {pathway_id!r}"
        )
    if pathway_id == ".":
        raise ConfigError(f"{where}.id '.' is the implicit default pathway of HLS; pick a name")
    where = f"{ENV_NAME}[{index}] ({pathway_id})"
    if pathway_id == EDGE_PATHWAY_ID:
        if "base_url" in entry:
            raise ConfigError(
                f"{where}.base_url: the edge's own URL is STREAMER_PUBLIC_URL, not set here"
            )
        base_url = edge.base_url
    else:
        raw_url = entry.get("base_url")
        if not isinstance(raw_url, str):
            raise ConfigError(f"{where}.base_url must be a string URL, got {raw_url!r}")
        base_url = _base_url(raw_url, f"{where}.base_url")
    regions = entry.get("regions", [])
    if not isinstance(regions, list) or not all(
        isinstance(r, str) and _REGION.fullmatch(r) for r in regions
    ):
        raise ConfigError(
            f"{where}.regions must be a list of region codes (1 to 16 of letters, digits, "
            f"'_', '-', as in listener tokens), got {regions!r}"
        )
    weight = entry.get("weight", DEFAULT_WEIGHT)
    if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= MAX_WEIGHT:
        raise ConfigError(
            f"{where}.weight must be an integer from 1 to {MAX_WEIGHT}, got {weight!r}"
        )
    return Pathway(pathway_id, base_url, frozenset(r.upper() for r in regions), weight)


def _base_url(value: str, what: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{what} must be an absolute http(s) URL, got {value!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"{what} must have no query or fragment, got {value!r}")
    if any(c in value for c in '"~ \t') or not value.isprintable():
        # '"' would end a quoted-string and '~' marks playlist template slots.
        raise ConfigError(f"{what} has a character a playlist URI cannot carry: {value!r}")
    return value.strip().rstrip("/")
