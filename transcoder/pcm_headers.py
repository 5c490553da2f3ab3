"""Check what WAV and AIFF headers declare against the bytes actually present.

ffprobe quietly re-estimates the duration of a short PCM file from its size, so a WAV whose
header promises more audio than it holds decodes "fine". We read the chunk headers ourselves.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER_READ_BYTES = 1 << 16  # chunk headers before the audio data fit easily in 64 KiB


@dataclass(frozen=True)
class DeclaredData:
    data_offset: int  # where the sample data starts
    declared_bytes: int  # what the header says follows; always > 0


def declared_pcm_data(head: bytes) -> DeclaredData | None:
    """The sample data a RIFF/WAVE or FORM/AIFF header declares; None for other formats."""
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return _walk(head, 12, little_endian=True, data_id=b"data", header_extra=0)
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        # SSND carries an 8-byte offset/blockSize header before the samples.
        return _walk(head, 12, little_endian=False, data_id=b"SSND", header_extra=8)
    return None


def _walk(
    head: bytes, offset: int, *, little_endian: bool, data_id: bytes, header_extra: int
) -> DeclaredData | None:
    size_format = "<I" if little_endian else ">I"
    while offset + 8 <= len(head):
        chunk_id = head[offset : offset + 4]
        (size,) = struct.unpack(size_format, head[offset + 4 : offset + 8])
        if chunk_id == data_id:
            # 0 and 0xFFFFFFFF mean "size unknown" (streamed WAV, RF64): nothing to check.
            # An SSND chunk no longer than its offset and block size declares no samples.
            if size in (0, 0xFFFFFFFF) or size <= header_extra:
                return None
            return DeclaredData(offset + 8 + header_extra, size - header_extra)
        offset += 8 + size + (size & 1)  # chunks are padded to even sizes
    return None
