"""Publishing refuses a rendition with more segments than its range of sequence numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from drm import KeyRing, new_kek
from streamer.catalog import Loudness, SourceInfo
from streamer.objects.memory import InMemoryObjectStore
from transcoder import publish
from transcoder.errors import PublishFailed
from transcoder.ladder import RenditionSpec
from transcoder.packaging import PackagedRendition, PackagedSegment
from transcoder.publish import TrackFacts, publish_track


def _rendition(tmp_path: Path, name: str, segments: int) -> PackagedRendition:
    init = tmp_path / f"{name}-init.mp4"
    init.write_bytes(b"\0" * 64)
    parts = []
    for index in range(segments):
        part = tmp_path / f"{name}-{index}.m4s"
        part.write_bytes(bytes([index]) * 100)
        parts.append(PackagedSegment((part,), 6.0))
    return PackagedRendition(RenditionSpec(name, "opus", 96, "free"), init, tuple(parts))


def test_a_rendition_longer_than_its_numbering_publishes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publish, "MEDIA_SEQUENCE_STRIDE", 3)
    kek = new_kek()
    facts = TrackFacts(
        track_id="trk",
        version="v1",
        master_sha256="0" * 64,
        source=SourceInfo("wav", "pcm_s16le", 48_000, 2, 16, 24.0, 1000),
        loudness=Loudness(-14.0, 5.0, -1.0, 0.0),
        silent=False,
        duration_s=24.0,
        created_at="2026-11-27T00:00:00Z",
        metadata={},
    )
    store = InMemoryObjectStore()
    renditions = [_rendition(tmp_path, "opus_96", 3), _rendition(tmp_path, "opus_32", 4)]
    formats = {"opus_96": (48_000, 2), "opus_32": (48_000, 2)}
    with pytest.raises(PublishFailed, match="opus_32 has 4 segments, more than the 3"):
        publish_track(store, facts, renditions, formats, ring=KeyRing(kek.kek_id, (kek,)),
                      rotation_segments=2)  # fmt: skip
    assert list(store.list("")) == []
