"""Builders for published tracks without ffmpeg: random "media" bytes, really encrypted.

Segments are random bytes encrypted with `drm.encrypt_segment` under content keys wrapped with
`drm.wrap_key`, laid out as ingest lays them out (`{rendition}/init.mp4`,
`{rendition}/seg_00000.m4s`, one key per tier and rotation period), so the edge cannot tell
them from the real thing except that they do not decode as audio.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from drm import (
    KeyRing,
    content_key_id,
    encrypt_segment,
    new_content_key,
    new_iv,
    sequence_iv,
    wrap_key,
)
from streamer.catalog import (
    Loudness,
    RenditionRecord,
    SegmentRecord,
    SourceInfo,
    TrackRecord,
    WrappedKey,
    current_record_key,
    encode_track_record,
    version_prefix,
    version_record_key,
)
from streamer.objects.port import IMMUTABLE, ObjectInfo, ObjectStore
from transcoder.ladder import CODECS_STRING, DEFAULT_LADDER, RenditionSpec
from transcoder.publish import MEDIA_SEQUENCE_STRIDE

LOUDNESS = Loudness(integrated_lufs=-9.5, range_lu=6.0, true_peak_dbtp=-0.4, playback_gain_db=-4.5)


@dataclass
class BuiltTrack:
    record: TrackRecord
    clear_keys: dict[str, bytes]  # key id -> content key
    clear: dict[str, bytes]  # relative object key -> clear bytes (init: as stored)
    stored: dict[str, bytes] = field(default_factory=dict)  # relative key -> stored bytes


def build_track(
    ring: KeyRing,
    track_id: str = "trk1",
    version: str = "v1",
    *,
    ladder: Sequence[RenditionSpec] = DEFAULT_LADDER,
    segments: int = 4,
    segment_s: float = 6.0,
    rotation: int = 2,
    segment_bytes: int = 3000,
    random_ivs: bool = False,
) -> BuiltTrack:
    """A track record of `ladder`, `segments` segments per rendition, and its objects.

    Segment IVs are their Media Sequence Numbers, each rendition numbered from its own
    range, as ingest publishes them; `random_ivs` builds a track as published before that."""
    kek = ring.active
    clear_keys: dict[str, bytes] = {}
    wrapped: dict[str, WrappedKey] = {}
    clear: dict[str, bytes] = {}
    stored: dict[str, bytes] = {}
    renditions = []
    for ordinal, spec in enumerate(ladder):
        media_sequence = 0 if random_ivs else ordinal * MEDIA_SEQUENCE_STRIDE
        init = os.urandom(600)
        init_key = f"{spec.name}/init.mp4"
        clear[init_key] = stored[init_key] = init
        records = []
        for index in range(segments):
            period = index // rotation
            key_id = content_key_id(version, spec.tier, period)
            if key_id not in clear_keys:
                clear_keys[key_id] = new_content_key()
                blob = wrap_key(clear_keys[key_id], key_id, kek)
                wrapped[key_id] = WrappedKey(
                    key_id, spec.tier, period, kek.kek_id, base64.b64encode(blob).decode()
                )
            iv = new_iv() if random_ivs else sequence_iv(media_sequence + index)
            plain = os.urandom(segment_bytes + index)
            body = encrypt_segment(plain, clear_keys[key_id], iv)
            key = f"{spec.name}/seg_{index:05d}.m4s"
            clear[key], stored[key] = plain, body
            records.append(
                SegmentRecord(key, segment_s, len(body), _sha256(body), key_id, iv.hex())
            )
        sizes = [r.size for r in records]
        renditions.append(
            RenditionRecord(
                name=spec.name,
                codec=spec.codec,
                codecs=CODECS_STRING[spec.codec],
                bitrate_kbps=spec.bitrate_kbps,
                sample_rate=48_000,
                channels=2,
                tier=spec.tier,
                init_key=init_key,
                init_size=len(init),
                init_sha256=_sha256(init),
                playlist_key=f"{spec.name}/index.m3u8",
                bandwidth=math.ceil(max(sizes) * 8 / segment_s),
                average_bandwidth=math.ceil(sum(sizes) * 8 / (segment_s * segments)),
                target_duration_s=math.ceil(segment_s),
                segments=tuple(records),
                media_sequence=media_sequence,
            )
        )
    record = TrackRecord(
        track_id=track_id,
        version=version,
        master_sha256="0" * 64,
        content_sha256="1" * 64,
        duration_s=segment_s * segments,
        source=SourceInfo("flac", "flac", 44_100, 2, 16, segment_s * segments, 123_456),
        loudness=LOUDNESS,
        silent=False,
        renditions=tuple(renditions),
        keys=tuple(wrapped.values()),
        created_at="2024-01-01T00:00:00Z",
    )
    return BuiltTrack(record, clear_keys, clear, stored)


def publish(store: ObjectStore, built: BuiltTrack, *, current: bool = True) -> None:
    """Put the objects, the version record and (if `current`) the current pointer."""
    record = built.record
    prefix = version_prefix(record.track_id, record.version)
    for key, body in built.stored.items():
        store.put(f"{prefix}/{key}", body, "audio/mp4", IMMUTABLE)
    encoded = encode_track_record(record)
    store.put(version_record_key(record.track_id, record.version), encoded, "application/json")
    if current:
        store.put(current_record_key(record.track_id), encoded, "application/json")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class CountingReader:
    """An ObjectReader that counts calls per method and key, around a real store."""

    def __init__(self, inner: ObjectStore) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str]] = []

    def gets(self, key: str | None = None) -> int:
        return sum(1 for m, k in self.calls if m == "get" and (key is None or k == key))

    def get(self, key: str) -> bytes:
        self.calls.append(("get", key))
        return self.inner.get(key)

    def get_range(self, key: str, start: int, length: int) -> bytes:
        self.calls.append(("get_range", key))
        return self.inner.get_range(key, start, length)

    def stat(self, key: str) -> ObjectInfo:
        self.calls.append(("stat", key))
        return self.inner.stat(key)

    def list(self, prefix: str) -> Iterator[str]:
        self.calls.append(("list", prefix))
        return self.inner.list(prefix)
