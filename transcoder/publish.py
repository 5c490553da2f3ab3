"""Encrypt packaged renditions and publish a track version atomically.

Order is what makes it atomic: segments and init segments first, media playlists next, the
version's track record after that, and `current.json` last, only once every object the record
names has been read back and its size and sha256 match. Readers find a track through
`current.json`, so they see the previous version or the complete new one, never a part.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from drm import (
    KeyRing,
    content_key_id,
    encrypt_segment,
    key_period,
    new_content_key,
    sequence_iv,
    wrap_key,
)
from manifests import Key, Map, MediaPlaylist, Segment, render_media
from streamer.catalog import (
    Loudness,
    RenditionRecord,
    SegmentRecord,
    SourceInfo,
    Tier,
    TrackRecord,
    WrappedKey,
    current_record_key,
    encode_track_record,
    version_prefix,
    version_record_key,
)
from streamer.errors import StorageError
from streamer.objects.port import IMMUTABLE, ObjectStore
from transcoder.errors import PublishFailed
from transcoder.gapless import AAC_PRIMING_SAMPLES, set_edit_media_time
from transcoder.ladder import CODECS_STRING
from transcoder.packaging import PackagedRendition

UPLOAD_THREADS = 8  # object stores reward parallel PUTs; the local one does not mind
# As the edge serves it (cdn_edge.playback.playlist_builder): keys beside the rendition, under
# the session.
KEY_URI_TEMPLATE = "../keys/{key_id}"
SEGMENT_CONTENT_TYPE = "video/iso.segment"  # RFC 8216 / CMAF; "audio/mp4" also plays
INIT_CONTENT_TYPE = "audio/mp4"
PLAYLIST_CONTENT_TYPE = "application/vnd.apple.mpegurl"
RECORD_CONTENT_TYPE = "application/json"
CURRENT_CACHE_CONTROL = "no-cache"  # re-ingest moves it; everything else is immutable
# Rendition n of a version numbers its segments from n * MEDIA_SEQUENCE_STRIDE, and each
# segment's number is its IV: renditions of one tier share content keys, so their numbers
# must not meet. A million 6-second segments is 69 days of audio; hls.js derives IVs from
# numbers below 2**31 only, which leaves room for 2,147 renditions.
MEDIA_SEQUENCE_STRIDE = 1_000_000


@dataclass(frozen=True)
class TrackFacts:
    """What ingest learned about the master, to be published with it."""

    track_id: str
    version: str
    master_sha256: str
    source: SourceInfo
    loudness: Loudness
    silent: bool
    duration_s: float
    created_at: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class _Upload:
    key: str
    data: bytes
    content_type: str
    cache_control: str


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _generate_keys(
    renditions: Iterable[PackagedRendition], version: str, rotation: int, ring: KeyRing
) -> tuple[dict[str, bytes], tuple[WrappedKey, ...]]:
    """One random content key per tier and rotation period, returned clear and wrapped."""
    periods: dict[Tier, int] = {}
    for rendition in renditions:
        count = math.ceil(len(rendition.segments) / rotation)
        periods[rendition.spec.tier] = max(periods.get(rendition.spec.tier, 0), count)
    clear: dict[str, bytes] = {}
    wrapped = []
    kek = ring.active
    for tier, count in sorted(periods.items()):
        for period in range(count):
            key_id = content_key_id(version, tier, period)
            clear[key_id] = new_content_key()
            wrapped.append(
                WrappedKey(
                    key_id=key_id,
                    tier=tier,
                    period=period,
                    kek_id=kek.kek_id,
                    wrapped_b64=base64.b64encode(wrap_key(clear[key_id], key_id, kek)).decode(),
                )
            )
    return clear, tuple(wrapped)


def _encrypt_rendition(
    rendition: PackagedRendition,
    version: str,
    keys: dict[str, bytes],
    rotation: int,
    sample_rate: int,
    channels: int,
    media_sequence: int,
) -> tuple[RenditionRecord, list[_Upload], MediaPlaylist]:
    name = rendition.spec.name
    if len(rendition.segments) > MEDIA_SEQUENCE_STRIDE:
        raise PublishFailed(
            f"{name} has {len(rendition.segments)} segments, more than the "
            f"{MEDIA_SEQUENCE_STRIDE} a rendition may number; ingest it with longer segments"
        )
    init = rendition.init_path.read_bytes()
    delay = AAC_PRIMING_SAMPLES if rendition.spec.codec == "aac" else 0
    if delay:
        init = set_edit_media_time(init, delay)
    uploads = [_Upload(f"{name}/init.mp4", init, INIT_CONTENT_TYPE, IMMUTABLE)]
    segments: list[SegmentRecord] = []
    playlist_segments: list[Segment] = []
    for index, packaged in enumerate(rendition.segments):
        clear = b"".join(part.read_bytes() for part in packaged.parts)
        key_id = content_key_id(version, rendition.spec.tier, key_period(index, rotation))
        iv = sequence_iv(media_sequence + index)
        body = encrypt_segment(clear, keys[key_id], iv)
        key = f"{name}/seg_{index:05d}.m4s"
        uploads.append(_Upload(key, body, SEGMENT_CONTENT_TYPE, IMMUTABLE))
        segments.append(
            SegmentRecord(
                key, round(packaged.duration_s, 6), len(body), _sha256(body), key_id, iv.hex()
            )
        )
        new_key = index == 0 or segments[-2].key_id != key_id
        playlist_segments.append(
            Segment(
                uri=f"seg_{index:05d}.m4s",
                duration=round(packaged.duration_s, 6),
                map=Map("init.mp4") if index == 0 else None,
                # No IV attribute: the player derives each segment's from its number.
                key=Key("AES-128", uri=KEY_URI_TEMPLATE.format(key_id=key_id)) if new_key else None,
            )
        )
    target = max(1, max(round(s.duration_s) for s in segments))
    playlist = MediaPlaylist(
        target_duration=target, media_sequence=media_sequence, segments=tuple(playlist_segments)
    )
    total_bytes = sum(s.size for s in segments)
    total_s = sum(s.duration_s for s in segments)
    record = RenditionRecord(
        name=name,
        codec=rendition.spec.codec,
        codecs=CODECS_STRING[rendition.spec.codec],
        bitrate_kbps=rendition.spec.bitrate_kbps,
        sample_rate=sample_rate,
        channels=channels,
        tier=rendition.spec.tier,
        init_key=f"{name}/init.mp4",
        init_size=len(init),
        init_sha256=_sha256(init),
        playlist_key=f"{name}/index.m3u8",
        bandwidth=peak_bandwidth(segments),
        average_bandwidth=math.ceil(total_bytes * 8 / total_s),
        target_duration_s=target,
        segments=tuple(segments),
        encoder_delay_samples=delay,
        media_sequence=media_sequence,
    )
    return record, uploads, playlist


def peak_bandwidth(segments: Iterable[SegmentRecord]) -> int:
    """Peak segment bit rate (RFC 8216 4.3.4.2), in bit/s, from the bytes actually published."""
    return max(math.ceil(s.size * 8 / s.duration_s) for s in segments)


def publish_track(
    store: ObjectStore,
    facts: TrackFacts,
    renditions: list[PackagedRendition],
    formats: dict[str, tuple[int, int]],
    *,
    ring: KeyRing,
    rotation_segments: int,
    on_uploaded: Callable[[int, int], None] | None = None,
) -> TrackRecord:
    """Encrypt, upload, verify and make visible one version of a track."""
    prefix = version_prefix(facts.track_id, facts.version)
    clear_keys, wrapped = _generate_keys(renditions, facts.version, rotation_segments, ring)
    records, media_uploads, playlists = [], [], []
    for ordinal, rendition in enumerate(renditions):
        rate, channels = formats[rendition.spec.name]
        record, uploads, playlist = _encrypt_rendition(
            rendition,
            facts.version,
            clear_keys,
            rotation_segments,
            rate,
            channels,
            media_sequence=ordinal * MEDIA_SEQUENCE_STRIDE,
        )
        records.append(record)
        media_uploads += uploads
        playlists.append(
            _Upload(
                record.playlist_key,
                render_media(playlist).encode(),
                PLAYLIST_CONTENT_TYPE,
                IMMUTABLE,
            )
        )
    clear_keys.clear()

    content_hash = hashlib.sha256()
    for upload in media_uploads + playlists:
        content_hash.update(f"{upload.key} {_sha256(upload.data)}\n".encode())
    track = TrackRecord(
        track_id=facts.track_id,
        version=facts.version,
        master_sha256=facts.master_sha256,
        content_sha256=content_hash.hexdigest(),
        duration_s=round(facts.duration_s, 6),
        source=facts.source,
        loudness=facts.loudness,
        silent=facts.silent,
        renditions=tuple(records),
        keys=wrapped,
        created_at=facts.created_at,
        metadata=facts.metadata,
    )
    try:
        _put_all(store, prefix, media_uploads, on_uploaded)
        _put_all(store, prefix, playlists, None)
        _verify(store, prefix, media_uploads + playlists)
        record_bytes = encode_track_record(track)
        store.put(
            version_record_key(facts.track_id, facts.version),
            record_bytes,
            RECORD_CONTENT_TYPE,
            IMMUTABLE,
        )
        store.put(
            current_record_key(facts.track_id),
            record_bytes,
            RECORD_CONTENT_TYPE,
            CURRENT_CACHE_CONTROL,
        )
    except StorageError as exc:
        raise PublishFailed(
            f"publishing {facts.track_id} version {facts.version} failed: {exc}; "
            "nothing was made visible and the job will be retried"
        ) from exc
    return track


def _put_all(
    store: ObjectStore,
    prefix: str,
    uploads: list[_Upload],
    on_uploaded: Callable[[int, int], None] | None,
) -> None:
    def put(upload: _Upload) -> None:
        store.put(f"{prefix}/{upload.key}", upload.data, upload.content_type, upload.cache_control)

    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        for done, _ in enumerate(pool.map(put, uploads), start=1):
            if on_uploaded is not None:
                on_uploaded(done, len(uploads))


def _verify(store: ObjectStore, prefix: str, uploads: list[_Upload]) -> None:
    """Read back every object's size and checksum before the track becomes visible."""

    def check(upload: _Upload) -> str | None:
        info = store.stat(f"{prefix}/{upload.key}")
        if info.size != len(upload.data) or info.etag != _sha256(upload.data):
            return f"{prefix}/{upload.key} (stored {info.size} bytes, etag {info.etag[:12]})"
        return None

    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        bad = [problem for problem in pool.map(check, uploads) if problem]
    if bad:
        raise PublishFailed(f"{len(bad)} objects did not verify after upload, first: {bad[0]}")


# For other publishers of clear objects (transcoder.ad_ingest): the same upload and read-back.
PublishedUpload = _Upload
put_all = _put_all
verify_uploads = _verify
