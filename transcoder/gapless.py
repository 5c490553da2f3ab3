"""Signal encoder delay in the init segment's edit list, so players trim it (gapless playback).

The AAC encoder emits 1024 samples of priming before the first real sample. An ISO BMFF edit
list (ISO/IEC 14496-12, 8.6.6) with `media_time` = priming tells a player to start presentation
after it. ffmpeg's fragmented-MP4 writer leaves `media_time` at 0, so we set it. Opus needs no
edit: its pre-skip travels in the `dOps` box and decoders apply it themselves.
"""

from __future__ import annotations

import struct

AAC_PRIMING_SAMPLES = 1024  # ffmpeg's native AAC encoder (initial_padding), as for most encoders
_CONTAINERS = (b"moov", b"trak", b"edts")


class EditListNotFound(ValueError):
    """The init segment has no moov/trak/edts/elst to patch."""


def _find_box(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int]:
    """(offset, size) of the first `kind` box among the boxes in data[start:end]."""
    offset = start
    while offset + 8 <= end:
        size, found = struct.unpack(">I4s", data[offset : offset + 8])
        if size < 8:
            break
        if found == kind:
            return offset, size
        offset += size
    raise EditListNotFound(f"no {kind.decode()} box in the init segment")


def set_edit_media_time(init: bytes, media_time: int) -> bytes:
    """The init segment with its first track's single edit starting at `media_time`."""
    start, end = 0, len(init)
    for kind in _CONTAINERS:
        offset, size = _find_box(init, start, end, kind)
        start, end = offset + 8, offset + size
    offset, size = _find_box(init, start, end, b"elst")
    version = init[offset + 8]
    (entries,) = struct.unpack(">I", init[offset + 12 : offset + 16])
    if entries != 1:
        raise EditListNotFound(f"the edit list has {entries} entries; expected 1")
    patched = bytearray(init)
    entry = offset + 16
    if version == 1:
        struct.pack_into(">q", patched, entry + 8, media_time)
    else:
        struct.pack_into(">i", patched, entry + 4, media_time)
    return bytes(patched)


def edit_media_time(init: bytes) -> int:
    """The first track's edit `media_time` (for tests and diagnostics)."""
    start, end = 0, len(init)
    for kind in _CONTAINERS:
        offset, size = _find_box(init, start, end, kind)
        start, end = offset + 8, offset + size
    offset, _ = _find_box(init, start, end, b"elst")
    entry = offset + 16
    if init[offset + 8] == 1:
        return int(struct.unpack(">q", init[entry + 8 : entry + 16])[0])
    return int(struct.unpack(">i", init[entry + 4 : entry + 8])[0])
