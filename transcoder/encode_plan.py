"""Plan the ffmpeg processes that encode and package a ladder (pure: builds argument lists).

One ffmpeg process runs its encoders one after another, so the ladder is split across
`processes` ffmpeg runs, balanced by measured encoder cost (see docs/baselines.md: the
native AAC encoder costs 2-2.5x libopus; FLAC is nearly free). Each process decodes the master
itself: decoding FLAC runs at ~750x realtime, so a second decode costs far less than a pipe.
The EBU R128 meter rides along in the cheaper process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from transcoder.ladder import AAC_MAX_SAMPLE_RATE, OPUS_SAMPLE_RATE, RenditionSpec

# Relative CPU cost per rendition, from docs/baselines.md (seconds per 3.5-minute track).
_COST = {"aac": 4.5, "opus": 2.0, "flac": 0.6}
_AAC_COST_PER_KBPS = 0.01  # 256 kbit/s costs ~1.5x 96 kbit/s
DEFAULT_PROCESSES = 2

INIT_NAME = "init.mp4"
SEGMENT_PATTERN = "seg_%05d.m4s"
PLAYLIST_NAME = "index.m3u8"


@dataclass(frozen=True)
class SourceFormat:
    sample_rate: int
    channels: int
    bits_per_sample: int | None


@dataclass(frozen=True)
class EncodeProcess:
    renditions: tuple[RenditionSpec, ...]
    measures_loudness: bool
    args: tuple[str, ...]


def rendition_cost(spec: RenditionSpec) -> float:
    if spec.codec == "aac" and spec.bitrate_kbps is not None:
        return _COST["aac"] + _AAC_COST_PER_KBPS * spec.bitrate_kbps
    return _COST[spec.codec]


def balance(
    ladder: tuple[RenditionSpec, ...], processes: int
) -> list[tuple[list[RenditionSpec], bool]]:
    """Greedy longest-first split of the ladder; the loudness meter goes to the lightest bin."""
    bins: list[list[RenditionSpec]] = [[] for _ in range(max(1, min(processes, len(ladder))))]
    loads = [0.0] * len(bins)
    for spec in sorted(ladder, key=rendition_cost, reverse=True):
        lightest = loads.index(min(loads))
        bins[lightest].append(spec)
        loads[lightest] += rendition_cost(spec)
    meter = loads.index(min(loads))
    return [(b, i == meter) for i, b in enumerate(bins)]


def output_sample_rate(spec: RenditionSpec, source: SourceFormat) -> int:
    if spec.codec == "opus":
        return OPUS_SAMPLE_RATE
    if spec.codec == "flac":
        return source.sample_rate  # lossless keeps the master's rate
    if source.sample_rate in (44_100, 48_000):
        return source.sample_rate
    if source.sample_rate > AAC_MAX_SAMPLE_RATE:
        return 48_000 if source.sample_rate % 48_000 == 0 else 44_100
    return 44_100 if source.sample_rate % 11_025 == 0 else 48_000


def output_channels(source: SourceFormat) -> int:
    """Mono stays mono; anything wider is folded down to stereo (ffmpeg's standard matrix)."""
    return 1 if source.channels == 1 else 2


def _codec_args(spec: RenditionSpec, source: SourceFormat) -> list[str]:
    rate = str(output_sample_rate(spec, source))
    if spec.codec == "aac":
        return ["-c:a", "aac", "-b:a", f"{spec.bitrate_kbps}k", "-ar", rate]
    if spec.codec == "opus":
        return ["-c:a", "libopus", "-b:a", f"{spec.bitrate_kbps}k", "-ar", rate]
    sample_fmt = "s16" if (source.bits_per_sample or 16) <= 16 else "s32"
    # FLAC in MP4 is still flagged experimental in ffmpeg 5.1's muxer.
    return ["-c:a", "flac", "-sample_fmt", sample_fmt, "-ar", rate, "-strict", "-2"]


def _hls_output_args(out_dir: Path, segment_s: int) -> list[str]:
    return [
        "-f", "hls",
        "-hls_time", str(segment_s),
        "-hls_playlist_type", "vod",
        "-hls_segment_type", "fmp4",
        "-hls_fmp4_init_filename", INIT_NAME,
        "-hls_segment_filename", str(out_dir / SEGMENT_PATTERN),
        str(out_dir / PLAYLIST_NAME),
    ]  # fmt: skip


def plan_encode(
    master: Path,
    source: SourceFormat,
    ladder: tuple[RenditionSpec, ...],
    work_dir: Path,
    *,
    segment_s: int,
    processes: int = DEFAULT_PROCESSES,
    ffmpeg: str = "ffmpeg",
    pre_filter: str = "",
) -> list[EncodeProcess]:
    """The ffmpeg runs that turn `master` into one HLS fMP4 directory per rendition.

    `pre_filter`: filters applied before the split (and the meter), e.g. an ad's gain.
    """
    layout = "mono" if output_channels(source) == 1 else "stereo"
    plan = []
    for renditions, meter in balance(ladder, processes):
        branches = len(renditions) + (1 if meter else 0)
        labels = [f"[r{i}]" for i in range(len(renditions))]
        pre = f",{pre_filter}" if pre_filter else ""
        graph = f"[0:a:0]aformat=channel_layouts={layout}{pre},asplit={branches}{''.join(labels)}"
        if meter:
            # framelog=verbose keeps the per-frame lines out of the info-level log we parse.
            graph += "[meter];[meter]ebur128=peak=true:framelog=verbose,anullsink"
        args = [
            ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "level+info",
            "-progress", "pipe:1", "-y", "-i", str(master), "-filter_complex", graph,
        ]  # fmt: skip
        for label, spec in zip(labels, renditions, strict=True):
            out_dir = work_dir / spec.name
            args += ["-map", label, *_codec_args(spec, source), "-map_metadata", "-1"]
            args += _hls_output_args(out_dir, segment_s)
        plan.append(EncodeProcess(tuple(renditions), meter, tuple(args)))
    return plan
