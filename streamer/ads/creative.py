"""The published ad creative: what `streamer ingest --kind ad` writes and the edge stitches.

Creatives live under `ads/`, never `tracks/`, so nothing that lists, opens or counts tracks
can find one: an ad is not a playable track and never a play.

    ads/{ad_id}/current.json                      the visible version's record
    ads/{ad_id}/{version}/ad.json                 each version's record (immutable)
    ads/{ad_id}/{version}/{rendition}/init.mp4    init section
    ads/{ad_id}/{version}/{rendition}/seg_NNNNN.m4s   clear media segments (see docs/decisions/0011)

Renditions reuse the track's `RenditionRecord`; segments carry no key (key_id and iv_hex "").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from streamer.catalog import Loudness, RenditionRecord, SegmentRecord
from streamer.errors import CatalogError

AD_RECORD_SCHEMA = 1


def ad_prefix(ad_id: str, version: str) -> str:
    return f"ads/{ad_id}/{version}"


def current_ad_key(ad_id: str) -> str:
    return f"ads/{ad_id}/current.json"


def ad_record_key(ad_id: str, version: str) -> str:
    return f"ads/{ad_id}/{version}/ad.json"


@dataclass(frozen=True)
class AdCreative:
    ad_id: str
    version: str
    master_sha256: str
    duration_s: float
    loudness: Loudness  # measured on the normalised audio: integrated within 1 LU of -14
    renditions: tuple[RenditionRecord, ...]
    created_at: str  # ISO 8601, UTC
    metadata: dict[str, Any] = field(default_factory=dict)
    schema: int = AD_RECORD_SCHEMA

    def rendition(self, name: str) -> RenditionRecord:
        for rendition in self.renditions:
            if rendition.name == name:
                return rendition
        raise KeyError(name)


def encode_ad_creative(creative: AdCreative) -> bytes:
    return json.dumps(asdict(creative), indent=1, sort_keys=True).encode()


def decode_ad_creative(data: bytes) -> AdCreative:
    try:
        raw = json.loads(data)
        if raw.get("schema") != AD_RECORD_SCHEMA:
            raise CatalogError(f"ad record schema {raw.get('schema')!r} is not {AD_RECORD_SCHEMA}")
        return AdCreative(
            ad_id=raw["ad_id"],
            version=raw["version"],
            master_sha256=raw["master_sha256"],
            duration_s=raw["duration_s"],
            loudness=Loudness(**raw["loudness"]),
            renditions=tuple(
                RenditionRecord(
                    **{**r, "segments": tuple(SegmentRecord(**s) for s in r["segments"])}
                )
                for r in raw["renditions"]
            ),
            created_at=raw["created_at"],
            metadata=raw.get("metadata", {}),
            schema=raw["schema"],
        )
    except CatalogError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise CatalogError(f"ad record does not decode: {exc}") from exc
