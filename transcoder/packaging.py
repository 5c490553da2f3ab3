"""Turn ffmpeg's per-rendition HLS fMP4 output into the segments we publish.

ffmpeg's hls muxer cuts at the target duration and leaves two kinds of debris at the end of a
track: a segment of a few milliseconds, and sometimes a segment holding only an `styp` box and
no media. We drop empty segments and fold a short tail into the segment before it: a CMAF
segment may hold several `moof`+`mdat` fragments, so concatenating the two files is valid.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from manifests import parse_media
from transcoder.encode_plan import INIT_NAME, PLAYLIST_NAME
from transcoder.errors import EncodeFailed
from transcoder.ladder import RenditionSpec

MIN_TAIL_S = 1.0  # a shorter last segment is merged into the one before it


@dataclass(frozen=True)
class PackagedSegment:
    parts: tuple[Path, ...]  # files whose concatenation is the segment
    duration_s: float


@dataclass(frozen=True)
class PackagedRendition:
    spec: RenditionSpec
    init_path: Path
    segments: tuple[PackagedSegment, ...]

    @property
    def duration_s(self) -> float:
        return sum(s.duration_s for s in self.segments)


def top_level_boxes(data: bytes) -> list[bytes]:
    """ISO BMFF box types at the top level of `data` (ISO/IEC 14496-12, 4.2)."""
    types, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1 and offset + 16 <= len(data):
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        types.append(kind)
        if size < 8:
            break
        offset += size
    return types


def tidy(
    segments: list[tuple[Path, float, bool]], min_tail_s: float = MIN_TAIL_S
) -> tuple[PackagedSegment, ...]:
    """Drop segments without media and merge a short last segment into its predecessor.

    `segments` holds (path, duration, has_media) in playlist order.
    """
    kept = [PackagedSegment((path,), duration) for path, duration, media in segments if media]
    if len(kept) >= 2 and kept[-1].duration_s < min_tail_s:
        tail = kept.pop()
        last = kept.pop()
        kept.append(PackagedSegment(last.parts + tail.parts, last.duration_s + tail.duration_s))
    return tuple(kept)


def read_rendition(out_dir: Path, spec: RenditionSpec) -> PackagedRendition:
    """Read what ffmpeg wrote for one rendition."""
    playlist_path = out_dir / PLAYLIST_NAME
    init_path = out_dir / INIT_NAME
    if not playlist_path.exists() or not init_path.exists():
        raise EncodeFailed(f"ffmpeg wrote no playlist or init segment for {spec.name}")
    playlist = parse_media(playlist_path.read_text(), strict=False)
    listed = []
    for segment in playlist.segments:
        path = out_dir / segment.uri
        has_media = b"moof" in top_level_boxes(path.read_bytes())
        listed.append((path, segment.duration, has_media))
    segments = tidy(listed)
    if not segments:
        raise EncodeFailed(f"ffmpeg wrote no media segments for {spec.name}")
    return PackagedRendition(spec, init_path, segments)
