"""Probe a master with ffprobe and decide whether it is worth encoding.

`probe_master` runs ffprobe (I/O); `check_probe` is the pure policy over its result. Headers can
lie, so the probe is only the first gate: the full decode during encoding is the second
(see `transcoder.pipeline`).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transcoder.errors import MasterRejected

MIN_DURATION_S = 1.0  # shorter clips are almost always mistakes (a stray sting, a bad export)
MIN_SAMPLE_RATE = 8_000
MAX_SAMPLE_RATE = 192_000
MAX_CHANNELS = 8
PROBE_TIMEOUT_S = 30.0
# Container formats we accept, as ffprobe names them (format_name is a comma list).
ACCEPTED_FORMATS = frozenset({"wav", "flac", "aiff", "mp3", "mov", "mp4", "m4a", "ogg", "w64"})


@dataclass(frozen=True)
class ProbeResult:
    format_name: str
    codec_name: str
    sample_rate: int
    channels: int
    bits_per_sample: int | None
    duration_s: float | None  # what the header claims; None when it does not say
    size_bytes: int


def probe_master(path: Path, ffprobe: str = "ffprobe", name: str | None = None) -> ProbeResult:
    """Run ffprobe on `path`; raise MasterRejected when it is not a readable audio file."""
    name = name or path.name
    size = path.stat().st_size
    if size == 0:
        raise MasterRejected(f"{name} is empty (0 bytes)", code="empty_file")
    try:
        completed = subprocess.run(
            [ffprobe, "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
            capture_output=True,
            timeout=PROBE_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise MasterRejected(
            f"{name}: ffprobe did not finish within {PROBE_TIMEOUT_S:.0f} s", code="not_audio"
        ) from exc
    if completed.returncode != 0:
        detail = completed.stderr.decode(errors="replace").strip().splitlines()
        reason = detail[-1].replace(f"{path}: ", "") if detail else "unknown format"
        raise MasterRejected(
            f"{name} is not a readable audio file (ffprobe: {reason})",
            code="not_audio",
        )
    return parse_probe(json.loads(completed.stdout), size, name)


def parse_probe(info: dict[str, Any], size_bytes: int, name: str) -> ProbeResult:
    """Pick the first audio stream out of ffprobe's JSON."""
    fmt = info.get("format", {})
    audio = [s for s in info.get("streams", []) if s.get("codec_type") == "audio"]
    if not audio:
        raise MasterRejected(f"{name} has no audio stream", code="no_audio_stream")
    stream = audio[0]
    duration = stream.get("duration") or fmt.get("duration")
    bits = int(stream.get("bits_per_raw_sample") or stream.get("bits_per_sample") or 0) or None
    return ProbeResult(
        format_name=str(fmt.get("format_name", "")),
        codec_name=str(stream.get("codec_name", "")),
        sample_rate=int(stream.get("sample_rate") or 0),
        channels=int(stream.get("channels") or 0),
        bits_per_sample=bits,
        duration_s=float(duration) if duration not in (None, "N/A") else None,
        size_bytes=size_bytes,
    )


def check_probe(probe: ProbeResult, name: str, max_duration_s: float) -> None:
    """Reject what the headers already show to be unusable."""
    formats = set(probe.format_name.split(","))
    if not formats & ACCEPTED_FORMATS:
        raise MasterRejected(
            f"{name} is {probe.format_name or 'an unknown format'}; "
            "submit WAV, FLAC, AIFF, MP3, M4A/ALAC or Ogg",
            code="unsupported_format",
        )
    if not MIN_SAMPLE_RATE <= probe.sample_rate <= MAX_SAMPLE_RATE:
        raise MasterRejected(
            f"{name} has a sample rate of {probe.sample_rate} Hz; "
            f"expected {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz",
            code="unsupported_sample_rate",
        )
    if not 1 <= probe.channels <= MAX_CHANNELS:
        raise MasterRejected(
            f"{name} has {probe.channels} channels; expected 1-{MAX_CHANNELS}",
            code="unsupported_channels",
        )
    if probe.duration_s is not None:
        check_duration(probe.duration_s, name, max_duration_s)


def check_duration(duration_s: float, name: str, max_duration_s: float) -> None:
    if duration_s < MIN_DURATION_S:
        raise MasterRejected(
            f"{name} lasts {duration_s:.2f} s; masters must last at least {MIN_DURATION_S:.0f} s",
            code="too_short",
        )
    if duration_s > max_duration_s:
        raise MasterRejected(
            f"{name} lasts {duration_s / 60:.1f} min, longer than the limit of "
            f"{max_duration_s / 60:.0f} min (STREAMER_MAX_MASTER_DURATION_S)",
            code="too_long",
        )
