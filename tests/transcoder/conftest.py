"""Fixtures for ingest tests: a keyring, a local object store, and a published track."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import pytest

from drm import KeyRing, decrypt_segment, new_kek, unwrap_key
from streamer.catalog import TrackRecord, version_prefix
from streamer.objects.local import LocalObjectStore
from streamer.objects.port import ObjectStore
from streamer.settings import Settings, load_settings
from tests.masters import make_master
from transcoder.pipeline import IngestResult, ingest_master


@pytest.fixture
def ring() -> KeyRing:
    kek = new_kek()
    return KeyRing(kek.kek_id, (kek,))


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")


def clear_segments(store: ObjectStore, ring: KeyRing, record: TrackRecord, rendition: str) -> bytes:
    """init + every segment of a rendition, decrypted with its stored, wrapped keys."""
    prefix = version_prefix(record.track_id, record.version)
    chosen = record.rendition(rendition)
    out = [store.get(f"{prefix}/{chosen.init_key}")]
    for segment in chosen.segments:
        wrapped = record.key(segment.key_id)
        key = unwrap_key(
            base64.b64decode(wrapped.wrapped_b64), wrapped.key_id, ring.get(wrapped.kek_id)
        )
        body = store.get(f"{prefix}/{segment.key}")
        out.append(decrypt_segment(body, key, bytes.fromhex(segment.iv_hex)))
    return b"".join(out)


@dataclass(frozen=True)
class Published:
    master: Path
    result: IngestResult
    store: LocalObjectStore
    ring: KeyRing
    settings: Settings


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Published:
    """A 20 s stereo 44.1 kHz master, ingested once for the whole module."""
    root = tmp_path_factory.mktemp("published")
    settings = load_settings(environ={}, data_dir=root / "data")
    kek = new_kek()
    ring = KeyRing(kek.kek_id, (kek,))
    store = LocalObjectStore(root / "objects")
    master = make_master(root / "master.flac", seconds=20.0)
    result = ingest_master(
        master,
        track_id="USRC17607839",
        metadata={"title": "Test Tones"},
        settings=settings,
        store=store,
        ring=ring,
        work_dir=root / "work",
    )
    return Published(master, result, store, ring, settings)
