"""The published track record: what ingest writes last and the edge reads first.

A track is visible when `tracks/{track_id}/current.json` exists; it names a version, and every
version's objects live under `tracks/{track_id}/{version}/`. Old versions stay readable, so
sessions that started on them keep playing after a re-ingest.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from streamer.errors import CatalogError

Tier = Literal["free", "premium"]
Codec = Literal["aac", "opus", "flac"]

TRACK_RECORD_SCHEMA = 1


def version_prefix(track_id: str, version: str) -> str:
    return f"tracks/{track_id}/{version}"


def current_record_key(track_id: str) -> str:
    """Written last by a publish: the track becomes visible when this object exists."""
    return f"tracks/{track_id}/current.json"


def version_record_key(track_id: str, version: str) -> str:
    return f"tracks/{track_id}/{version}/track.json"


@dataclass(frozen=True)
class Loudness:
    """EBU R128 measurements of the master and the gain that brings it to the target."""

    integrated_lufs: float
    range_lu: float
    true_peak_dbtp: float
    playback_gain_db: float
    target_lufs: float = -14.0


@dataclass(frozen=True)
class SourceInfo:
    """What ffprobe and the full decode found in the master."""

    format_name: str
    codec_name: str
    sample_rate: int
    channels: int
    bits_per_sample: int | None
    duration_s: float
    size_bytes: int


@dataclass(frozen=True)
class SegmentRecord:
    """One encrypted media segment; `key` is relative to the version prefix."""

    key: str
    duration_s: float
    size: int
    sha256: str
    key_id: str
    iv_hex: str


@dataclass(frozen=True)
class RenditionRecord:
    name: str  # e.g. "aac_160", "opus_96", "flac"
    codec: Codec
    codecs: str  # the RFC 6381 string for CODECS: "mp4a.40.2", "opus", "fLaC"
    bitrate_kbps: int | None  # nominal encoder bitrate; None for lossless
    sample_rate: int
    channels: int
    tier: Tier  # the lowest tier entitled to it
    init_key: str
    init_size: int
    init_sha256: str
    playlist_key: str
    bandwidth: int  # peak segment bitrate, bit/s, measured
    average_bandwidth: int  # bit/s over the whole rendition, measured
    target_duration_s: int
    segments: tuple[SegmentRecord, ...]
    # Samples of encoder priming before the first real sample, also signalled in the init
    # segment's edit list; gapless players trim them (AAC: 1024; Opus: 0, its pre-skip is in dOps).
    encoder_delay_samples: int = 0
    # The Media Sequence Number of the first segment (EXT-X-MEDIA-SEQUENCE). Each rendition of
    # a version has its own range, so that a segment's number is unique under its key and can
    # be its IV (drm.sequence_iv): then its EXT-X-KEY needs no IV attribute. Records from
    # before this was kept say 0 and carry random IVs, written out per segment.
    media_sequence: int = 0


@dataclass(frozen=True)
class WrappedKey:
    """A content key, stored only wrapped under a key-encryption key (never in the clear)."""

    key_id: str
    tier: Tier  # free keys open free renditions; premium keys open premium-only ones
    period: int  # key rotation period index
    kek_id: str
    wrapped_b64: str  # AES-256-GCM nonce || ciphertext || tag, base64


@dataclass(frozen=True)
class TrackRecord:
    track_id: str
    version: str
    master_sha256: str
    content_sha256: str  # over every published object's sha256, in order
    duration_s: float
    source: SourceInfo
    loudness: Loudness
    silent: bool
    renditions: tuple[RenditionRecord, ...]
    keys: tuple[WrappedKey, ...]
    created_at: str  # ISO 8601, UTC
    metadata: dict[str, Any] = field(default_factory=dict)
    schema: int = TRACK_RECORD_SCHEMA

    def rendition(self, name: str) -> RenditionRecord:
        for rendition in self.renditions:
            if rendition.name == name:
                return rendition
        raise KeyError(name)

    def key(self, key_id: str) -> WrappedKey:
        for key in self.keys:
            if key.key_id == key_id:
                return key
        raise KeyError(key_id)


def encode_track_record(record: TrackRecord) -> bytes:
    return json.dumps(asdict(record), indent=1, sort_keys=True).encode()


def decode_track_record(data: bytes) -> TrackRecord:
    try:
        raw = json.loads(data)
        if raw.get("schema") != TRACK_RECORD_SCHEMA:
            raise CatalogError(
                f"track record schema {raw.get('schema')!r} is not {TRACK_RECORD_SCHEMA}; "
                "run a newer server or re-ingest the track"
            )
        return TrackRecord(
            track_id=raw["track_id"],
            version=raw["version"],
            master_sha256=raw["master_sha256"],
            content_sha256=raw["content_sha256"],
            duration_s=raw["duration_s"],
            source=SourceInfo(**raw["source"]),
            loudness=Loudness(**raw["loudness"]),
            silent=raw["silent"],
            renditions=tuple(
                RenditionRecord(
                    **{**r, "segments": tuple(SegmentRecord(**s) for s in r["segments"])}
                )
                for r in raw["renditions"]
            ),
            keys=tuple(WrappedKey(**k) for k in raw["keys"]),
            created_at=raw["created_at"],
            metadata=raw.get("metadata", {}),
            schema=raw["schema"],
        )
    except CatalogError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise CatalogError(f"track record does not decode: {exc}") from exc


def segment_timeline(record: TrackRecord) -> dict[str, tuple[float, float]]:
    """Media segment key ("aac_160/seg_00003.m4s") -> (start, duration) in seconds, each
    rendition timed from its own start."""
    out: dict[str, tuple[float, float]] = {}
    for rendition in record.renditions:
        start = 0.0
        for segment in rendition.segments:
            out[segment.key] = (start, segment.duration_s)
            start += segment.duration_s
    return out
