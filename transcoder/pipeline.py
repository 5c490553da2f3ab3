"""One master in, one published track version out: probe, encode, measure, package, publish.

The ingest steps are functions over small values; this module strings them together and is
the only place in ingest that knows their order.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from drm import KeyRing
from streamer.catalog import (
    SourceInfo,
    TrackRecord,
    current_record_key,
    decode_track_record,
    encode_track_record,
    version_record_key,
)
from streamer.errors import ObjectNotFound
from streamer.objects.port import ObjectStore
from streamer.settings import Settings
from transcoder import loudness
from transcoder.encode_plan import SourceFormat, output_channels, output_sample_rate, plan_encode
from transcoder.errors import EncodeFailed, MasterRejected
from transcoder.ffmpeg_runner import FfmpegResult, run_parallel
from transcoder.ladder import DEFAULT_LADDER, RenditionSpec
from transcoder.packaging import PackagedRendition, read_rendition
from transcoder.pcm_headers import HEADER_READ_BYTES, declared_pcm_data
from transcoder.probe import ProbeResult, check_duration, check_probe, probe_master
from transcoder.publish import CURRENT_CACHE_CONTROL, RECORD_CONTENT_TYPE, TrackFacts, publish_track
from transcoder.submit import file_sha256

VERSION_HEX_CHARS = 16  # 64 bits of the master's sha256: collisions are not a practical concern
DEADLINE_BASE_S = 60.0
# A decode this much shorter than the header's duration means the file was cut short. MP3
# headers only estimate, hence the relative slack.
TRUNCATION_SLACK_S = 0.5
TRUNCATION_SLACK_RATIO = 0.02
_DECODE_ERROR = re.compile(r"\[error\].*(decod|Invalid data|corrupt|invalid residual)", re.I)

ProgressCallback = Callable[[str, float, float | None], None]
"""(stage, percent 0-100, speed x-realtime or None)."""


@dataclass(frozen=True)
class IngestResult:
    record: TrackRecord
    reused: bool  # identical master bytes were already published: nothing was encoded
    encode_s: float = 0.0


def version_for(master_sha256: str) -> str:
    return master_sha256[:VERSION_HEX_CHARS]


def find_published(store: ObjectStore, track_id: str, version: str) -> TrackRecord | None:
    """The record of `version` if that version was published before, else None."""
    try:
        return decode_track_record(store.get(version_record_key(track_id, version)))
    except ObjectNotFound:
        return None


def check_declared_length(master: Path, probe: ProbeResult, name: str) -> None:
    """Reject PCM files whose header promises more samples than the file holds."""
    with master.open("rb") as handle:
        declared = declared_pcm_data(handle.read(HEADER_READ_BYTES))
    if declared is None:
        return
    present = probe.size_bytes - declared.data_offset
    if present < declared.declared_bytes:
        share = present / declared.declared_bytes
        raise MasterRejected(
            f"{name} is truncated: its header declares {declared.declared_bytes} bytes "
            f"of audio but the file holds {max(present, 0)} ({share:.0%})",
            code="truncated",
        )


def check_decode(
    name: str, probe: ProbeResult, results: list[FfmpegResult], decoded_s: float
) -> None:
    """Second gate: the full decode must have been clean and as long as the header says."""
    errors = [line for r in results for line in r.log.splitlines() if _DECODE_ERROR.search(line)]
    claimed = probe.duration_s
    if errors:
        where = f" after {decoded_s:.1f} s" + (f" of {claimed:.1f} s" if claimed else "")
        raise MasterRejected(
            f"{name} has damaged or truncated audio data: the decoder failed{where} "
            f"({errors[0].split('] ')[-1].strip()})",
            code="corrupt_data",
        )
    if claimed and decoded_s < claimed - max(TRUNCATION_SLACK_S, claimed * TRUNCATION_SLACK_RATIO):
        raise MasterRejected(
            f"{name} is truncated: its header says {claimed:.1f} s but only "
            f"{decoded_s:.1f} s of audio decode",
            code="truncated",
        )


def ingest_master(
    master: Path,
    *,
    track_id: str,
    metadata: dict[str, Any],
    settings: Settings,
    store: ObjectStore,
    ring: KeyRing,
    work_dir: Path,
    master_sha256: str | None = None,
    display_name: str | None = None,
    ladder: tuple[RenditionSpec, ...] = DEFAULT_LADDER,
    on_progress: ProgressCallback | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> IngestResult:
    """Publish `master` as a version of `track_id`, or return the version already published."""
    report = on_progress or (lambda stage, percent, speed: None)
    name = display_name or master.name  # what the ingest team called the file
    master_sha256 = master_sha256 or file_sha256(master)
    version = version_for(master_sha256)
    existing = find_published(store, track_id, version)
    if existing is not None:
        # Identical bytes: make that version current again (it may have been superseded).
        store.put(
            current_record_key(track_id),
            encode_track_record(existing),
            RECORD_CONTENT_TYPE,
            CURRENT_CACHE_CONTROL,
        )
        report("published", 100.0, None)
        return IngestResult(existing, reused=True)

    report("probing", 0.0, None)
    probe = probe_master(master, settings.ffprobe, name)
    check_probe(probe, name, settings.max_master_duration_s)
    check_declared_length(master, probe, name)

    source = SourceFormat(probe.sample_rate, probe.channels, probe.bits_per_sample)
    if work_dir.exists():
        shutil.rmtree(work_dir)  # debris of an earlier attempt at this job
    for spec in ladder:
        (work_dir / spec.name).mkdir(parents=True)
    plan = plan_encode(
        master,
        source,
        ladder,
        work_dir,
        segment_s=settings.segment_target_s,
        ffmpeg=settings.ffmpeg,
    )
    expected_s = probe.duration_s or 0.0
    started = now()

    def encode_progress(out_s: float) -> None:
        elapsed = (now() - started).total_seconds()
        speed = out_s / elapsed if elapsed > 0.2 else None
        percent = min(99.0, 100.0 * out_s / expected_s) if expected_s else 0.0
        report("encoding", percent, speed)

    deadline = DEADLINE_BASE_S + expected_s * settings.ffmpeg_timeout_factor
    results = run_parallel([p.args for p in plan], deadline_s=deadline, on_progress=encode_progress)
    encode_s = (now() - started).total_seconds()

    meter = next(r for r, p in zip(results, plan, strict=True) if p.measures_loudness)
    decoded_s = max(r.out_time_s for r in results)
    check_decode(name, probe, results, decoded_s)
    failed = [(r, p) for r, p in zip(results, plan, strict=True) if r.returncode != 0]
    if failed:
        result, process = failed[0]
        tail = [line for line in result.log.splitlines() if "[error]" in line or "[fatal]" in line]
        names = ", ".join(s.name for s in process.renditions)
        raise EncodeFailed(
            f"ffmpeg failed (exit {result.returncode}) encoding {names}: "
            f"{' | '.join(tail[-3:]) or 'no error printed'}"
        )

    renditions = [read_rendition(work_dir / spec.name, spec) for spec in ladder]
    duration_s = _content_duration(probe, renditions, decoded_s)
    check_duration(duration_s, name, settings.max_master_duration_s)
    measured = loudness.measure(meter.log)
    silent = loudness.is_silent(measured.integrated_lufs, measured.true_peak_dbtp)
    if silent and settings.reject_silent:
        raise MasterRejected(
            f"{name} is silent (integrated loudness {measured.integrated_lufs:.1f} LUFS, "
            f"true peak {measured.true_peak_dbtp:.1f} dBTP); set STREAMER_REJECT_SILENT=false "
            "to publish silent tracks",
            code="silent",
        )

    report("publishing", 99.0, None)
    facts = TrackFacts(
        track_id=track_id,
        version=version,
        master_sha256=master_sha256,
        source=SourceInfo(
            format_name=probe.format_name,
            codec_name=probe.codec_name,
            sample_rate=probe.sample_rate,
            channels=probe.channels,
            bits_per_sample=probe.bits_per_sample,
            duration_s=round(duration_s, 6),
            size_bytes=probe.size_bytes,
        ),
        loudness=measured,
        silent=silent,
        duration_s=duration_s,
        created_at=now().isoformat(timespec="seconds"),
        metadata=metadata,
    )
    formats = {
        spec.name: (output_sample_rate(spec, source), output_channels(source)) for spec in ladder
    }
    record = publish_track(
        store,
        facts,
        renditions,
        formats,
        ring=ring,
        rotation_segments=settings.key_rotation_segments,
    )
    report("published", 100.0, expected_s / encode_s if encode_s else None)
    return IngestResult(record, reused=False, encode_s=encode_s)


def _content_duration(
    probe: ProbeResult, renditions: list[PackagedRendition], decoded_s: float
) -> float:
    """The master's duration: the header's, once the full decode has confirmed it.

    Decoded lengths are rounded up to whole codec frames (FLAC blocks are 0.1 s), so an exact
    header wins when the decode agrees with it; otherwise the lossless rendition's length.
    """
    if probe.duration_s and abs(probe.duration_s - decoded_s) <= TRUNCATION_SLACK_S:
        return probe.duration_s
    for rendition in renditions:
        if rendition.spec.codec == "flac":
            return rendition.duration_s
    return decoded_s
