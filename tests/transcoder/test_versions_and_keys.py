"""Re-ingest is idempotent, new masters make new versions, and KEK rotation keeps keys working."""

from __future__ import annotations

from pathlib import Path

import pytest

from drm import KeyRing
from streamer.catalog import current_record_key, decode_track_record, version_record_key
from streamer.objects.local import LocalObjectStore
from streamer.settings import Settings
from tests.masters import make_master
from tests.transcoder.conftest import clear_segments
from transcoder.kek_rotation import rotate_kek
from transcoder.pipeline import ingest_master

pytestmark = pytest.mark.slow


def _ingest(master: Path, settings: Settings, store: LocalObjectStore, ring: KeyRing, tmp: Path):
    return ingest_master(
        master, track_id="isrc1", metadata={}, settings=settings, store=store, ring=ring,
        work_dir=tmp / "work",
    )  # fmt: skip


def test_identical_master_is_a_no_op(
    tmp_path: Path, settings: Settings, store: LocalObjectStore, ring: KeyRing
) -> None:
    master = make_master(tmp_path / "a.flac", seconds=4.0)
    first = _ingest(master, settings, store, ring, tmp_path)
    objects = {key: store.stat(key).etag for key in store.list("")}
    again = _ingest(master, settings, store, ring, tmp_path)
    assert again.reused and again.record == first.record
    assert {key: store.stat(key).etag for key in store.list("")} == objects


def test_new_master_makes_a_new_version_and_keeps_the_old_one_playable(
    tmp_path: Path, settings: Settings, store: LocalObjectStore, ring: KeyRing
) -> None:
    old = _ingest(make_master(tmp_path / "a.flac", seconds=4.0), settings, store, ring, tmp_path)
    new = _ingest(make_master(tmp_path / "b.flac", seconds=5.0), settings, store, ring, tmp_path)
    assert new.record.version != old.record.version
    current = decode_track_record(store.get(current_record_key("isrc1")))
    assert current.version == new.record.version
    kept = decode_track_record(store.get(version_record_key("isrc1", old.record.version)))
    assert kept == old.record
    assert clear_segments(store, ring, kept, "aac_96")  # every segment still decrypts
    # Going back to the first master restores its version without encoding again.
    back = _ingest(tmp_path / "a.flac", settings, store, ring, tmp_path)
    assert back.reused and back.record.version == old.record.version
    current = decode_track_record(store.get(current_record_key("isrc1")))
    assert current.version == old.record.version


def test_kek_rotation_rewraps_every_key_and_segments_still_open(
    tmp_path: Path, settings: Settings, store: LocalObjectStore, ring: KeyRing
) -> None:
    first = _ingest(make_master(tmp_path / "a.flac", seconds=4.0), settings, store, ring, tmp_path)
    second = _ingest(make_master(tmp_path / "b.flac", seconds=3.0), settings, store, ring, tmp_path)
    saved: list[KeyRing] = []
    report = rotate_kek(store, ring, saved.append)
    new_ring = saved[-1]
    assert report.new_kek_id == new_ring.active_id != ring.active_id
    assert report.records == 2 and report.keys == len(first.record.keys) + len(second.record.keys)
    for version in (first.record.version, second.record.version):
        record = decode_track_record(store.get(version_record_key("isrc1", version)))
        assert {key.kek_id for key in record.keys} == {new_ring.active_id}
        for rendition in record.renditions:
            clear = clear_segments(store, new_ring, record, rendition.name)
            assert b"moof" in clear
    current = decode_track_record(store.get(current_record_key("isrc1")))
    assert {key.kek_id for key in current.keys} == {new_ring.active_id}
    # The old KEK alone no longer opens anything: the records really were re-wrapped.
    with pytest.raises(Exception, match=r"(?i)unknown|kek"):
        clear_segments(store, ring, current, "aac_96")
