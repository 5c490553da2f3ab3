"""`streamer ingest --kind ad`: one ad master in, one published ad creative out.

The ladder's rules (probe, decode checks, the free renditions' codecs and bit rates), but:

- **loudness matched to the programme**: the master is measured first (EBU R128), then encoded
  with the gain that brings it to -14 LUFS (a limiter at LIMIT_DBFS when the gain would push its
  peaks past it); the meter in the encode measures the result, and a creative further than
  AD_LOUDNESS_TOLERANCE_LU from the target is refused (`loudness`). Tracks carry a playback gain
  instead; an ad is stitched into whatever the player plays, so its samples must already match.
- **short segments** (AD_SEGMENT_S), so a break starts and ends close to where it is cut;
- **clear segments**, published under `ads/`, never `tracks/` (streamer.ads.creative;
  why clear: docs/decisions/0011).
"""

from __future__ import annotations

import hashlib
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streamer.ads.creative import (
    AdCreative,
    ad_prefix,
    ad_record_key,
    current_ad_key,
    decode_ad_creative,
    encode_ad_creative,
)
from streamer.catalog import Loudness, RenditionRecord, SegmentRecord
from streamer.errors import ObjectNotFound, StorageError
from streamer.objects.port import IMMUTABLE, ObjectStore
from streamer.settings import Settings
from transcoder import loudness
from transcoder.encode_plan import SourceFormat, output_channels, output_sample_rate, plan_encode
from transcoder.errors import EncodeFailed, MasterRejected, PublishFailed
from transcoder.ffmpeg_runner import run_parallel
from transcoder.gapless import AAC_PRIMING_SAMPLES, set_edit_media_time
from transcoder.ladder import CODECS_STRING, DEFAULT_LADDER, RenditionSpec
from transcoder.packaging import PackagedRendition, read_rendition
from transcoder.pipeline import DEADLINE_BASE_S, check_declared_length, check_decode, version_for
from transcoder.probe import check_probe, probe_master
from transcoder.publish import (
    CURRENT_CACHE_CONTROL,
    INIT_CONTENT_TYPE,
    RECORD_CONTENT_TYPE,
    SEGMENT_CONTENT_TYPE,
    PublishedUpload,
    put_all,
    verify_uploads,
)
from transcoder.submit import file_sha256

AD_SEGMENT_S = 2  # a break is cut at segment boundaries; tracks use 6 s
AD_LOUDNESS_TOLERANCE_LU = 1.0
AD_MAX_DURATION_S = 120.0  # audio spots run 15-60 s; anything longer is not an ad
LIMIT_DBFS = -1.5  # the limiter's ceiling when the gain would push peaks past -1 dBTP
# Free renditions only: premium sessions never get ads.
AD_LADDER: tuple[RenditionSpec, ...] = tuple(s for s in DEFAULT_LADDER if s.tier == "free")


@dataclass(frozen=True)
class AdIngestResult:
    creative: AdCreative
    reused: bool


def gain_filter(measured: Loudness) -> str:
    """The ffmpeg filters that bring `measured` to TARGET_LUFS: a gain, limited if needed."""
    gain = loudness.TARGET_LUFS - measured.integrated_lufs
    graph = f"volume={gain:.2f}dB"
    if measured.true_peak_dbtp + gain > loudness.MAX_TRUE_PEAK_DBTP:
        graph += f",alimiter=limit={10 ** (LIMIT_DBFS / 20):.4f}:level=disabled"
    return graph


def check_ad_loudness(name: str, measured: Loudness) -> None:
    off = measured.integrated_lufs - loudness.TARGET_LUFS
    if abs(off) > AD_LOUDNESS_TOLERANCE_LU:
        raise MasterRejected(
            f"{name} measures {measured.integrated_lufs:.1f} LUFS after normalising, "
            f"{abs(off):.1f} LU from the programme's {loudness.TARGET_LUFS:.0f} LUFS "
            f"(allowed: {AD_LOUDNESS_TOLERANCE_LU:.0f} LU); it is too dynamic or too quiet to "
            "match without audible limiting",
            code="loudness",
        )


def _measure_master(master: Path, settings: Settings, deadline_s: float) -> Loudness:
    args = [
        settings.ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+info",
        "-progress", "pipe:1", "-i", str(master), "-map", "0:a:0",
        "-af", "ebur128=peak=true:framelog=verbose", "-f", "null", "-",
    ]  # fmt: skip
    (result,) = run_parallel([args], deadline_s=deadline_s)
    if result.returncode != 0:
        raise EncodeFailed(f"ffmpeg could not measure the loudness of {master.name}")
    return loudness.measure(result.log)


def ingest_ad(
    master: Path,
    *,
    ad_id: str,
    metadata: dict[str, Any],
    settings: Settings,
    store: ObjectStore,
    work_dir: Path,
    master_sha256: str | None = None,
    display_name: str | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AdIngestResult:
    """Publish `master` as a version of the ad creative `ad_id`."""
    name = display_name or master.name
    master_sha256 = master_sha256 or file_sha256(master)
    version = version_for(master_sha256)
    try:
        existing = decode_ad_creative(store.get(ad_record_key(ad_id, version)))
    except ObjectNotFound:
        existing = None
    if existing is not None:
        _put_current(store, existing)
        return AdIngestResult(existing, reused=True)

    probe = probe_master(master, settings.ffprobe, name)
    check_probe(probe, name, min(settings.max_master_duration_s, AD_MAX_DURATION_S))
    check_declared_length(master, probe, name)
    expected_s = probe.duration_s or 0.0
    deadline = DEADLINE_BASE_S + expected_s * settings.ffmpeg_timeout_factor
    source_loudness = _measure_master(master, settings, deadline)
    if loudness.is_silent(source_loudness.integrated_lufs, source_loudness.true_peak_dbtp):
        raise MasterRejected(f"{name} is silent: an ad must be heard", code="silent")

    source = SourceFormat(probe.sample_rate, probe.channels, probe.bits_per_sample)
    if work_dir.exists():
        shutil.rmtree(work_dir)
    for spec in AD_LADDER:
        (work_dir / spec.name).mkdir(parents=True)
    plan = plan_encode(
        master,
        source,
        AD_LADDER,
        work_dir,
        segment_s=AD_SEGMENT_S,
        ffmpeg=settings.ffmpeg,
        pre_filter=gain_filter(source_loudness),
    )
    results = run_parallel([p.args for p in plan], deadline_s=deadline)
    decoded_s = max(r.out_time_s for r in results)
    check_decode(name, probe, results, decoded_s)
    if any(r.returncode != 0 for r in results):
        raise EncodeFailed(f"ffmpeg failed encoding the ad {name}")
    meter = next(r for r, p in zip(results, plan, strict=True) if p.measures_loudness)
    measured = loudness.measure(meter.log)
    check_ad_loudness(name, measured)
    renditions = [read_rendition(work_dir / spec.name, spec) for spec in AD_LADDER]
    creative = publish_ad(
        store,
        ad_id=ad_id,
        version=version,
        master_sha256=master_sha256,
        measured=measured,
        renditions=renditions,
        source=source,
        created_at=now().isoformat(timespec="seconds"),
        metadata=metadata,
    )
    return AdIngestResult(creative, reused=False)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _clear_rendition(
    rendition: PackagedRendition, source: SourceFormat
) -> tuple[RenditionRecord, list[PublishedUpload]]:
    spec = rendition.spec
    init = rendition.init_path.read_bytes()
    delay = AAC_PRIMING_SAMPLES if spec.codec == "aac" else 0
    if delay:
        init = set_edit_media_time(init, delay)
    uploads = [PublishedUpload(f"{spec.name}/init.mp4", init, INIT_CONTENT_TYPE, IMMUTABLE)]
    segments = []
    for index, packaged in enumerate(rendition.segments):
        body = b"".join(part.read_bytes() for part in packaged.parts)
        key = f"{spec.name}/seg_{index:05d}.m4s"
        uploads.append(PublishedUpload(key, body, SEGMENT_CONTENT_TYPE, IMMUTABLE))
        segments.append(
            SegmentRecord(key, round(packaged.duration_s, 6), len(body), _sha256(body), "", "")
        )
    total_s = sum(s.duration_s for s in segments)
    record = RenditionRecord(
        name=spec.name,
        codec=spec.codec,
        codecs=CODECS_STRING[spec.codec],
        bitrate_kbps=spec.bitrate_kbps,
        sample_rate=output_sample_rate(spec, source),
        channels=output_channels(source),
        tier=spec.tier,
        init_key=f"{spec.name}/init.mp4",
        init_size=len(init),
        init_sha256=_sha256(init),
        playlist_key="",  # the edge renders ad playlists from the record
        bandwidth=max(math.ceil(s.size * 8 / s.duration_s) for s in segments),
        average_bandwidth=math.ceil(sum(s.size for s in segments) * 8 / total_s),
        target_duration_s=max(1, max(round(s.duration_s) for s in segments)),
        segments=tuple(segments),
        encoder_delay_samples=delay,
    )
    return record, uploads


def publish_ad(
    store: ObjectStore,
    *,
    ad_id: str,
    version: str,
    master_sha256: str,
    measured: Loudness,
    renditions: list[PackagedRendition],
    source: SourceFormat,
    created_at: str,
    metadata: dict[str, Any],
) -> AdCreative:
    """Upload, verify and make visible one version of an ad creative."""
    records, uploads = [], []
    for rendition in renditions:
        record, files = _clear_rendition(rendition, source)
        records.append(record)
        uploads += files
    creative = AdCreative(
        ad_id=ad_id,
        version=version,
        master_sha256=master_sha256,
        duration_s=round(min(r.duration_s for r in renditions), 6),
        loudness=measured,
        renditions=tuple(records),
        created_at=created_at,
        metadata=metadata,
    )
    prefix = ad_prefix(ad_id, version)
    try:
        put_all(store, prefix, uploads, None)
        verify_uploads(store, prefix, uploads)
        store.put(
            ad_record_key(ad_id, version),
            encode_ad_creative(creative),
            RECORD_CONTENT_TYPE,
            IMMUTABLE,
        )
        _put_current(store, creative)
    except StorageError as exc:
        raise PublishFailed(
            f"publishing ad {ad_id} version {version} failed: {exc}; nothing was made visible"
        ) from exc
    return creative


def _put_current(store: ObjectStore, creative: AdCreative) -> None:
    store.put(
        current_ad_key(creative.ad_id),
        encode_ad_creative(creative),
        RECORD_CONTENT_TYPE,
        CURRENT_CACHE_CONTROL,
    )
