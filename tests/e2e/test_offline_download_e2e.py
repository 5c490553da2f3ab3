"""Ingest to a device's offline copy: a premium device downloads a real track under its
licence, opens the keys with its own private key, and what it decrypts is the master.

A generated master goes through the real ingest (ffmpeg); the edge runs over that store with an
offline store. The device follows the licence's playlist URLs as an HLS client would, unwraps
each EXT-X-KEY's key from the licence (never from the key URL, which refuses a download
session), decrypts every segment with drm.decrypt_segment, and ffmpeg decodes the result.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import m3u8
import numpy as np
import pytest
from aiohttp import web

from cdn_edge.app import create_app
from cdn_edge.listener_auth import issue_listener_token
from drm import KeyRing, decrypt_segment, new_kek
from streamer.catalog import TrackRecord
from streamer.objects.local import LocalObjectStore
from streamer.offline.sqlite import SQLiteOfflineStore
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.settings import Settings, load_settings
from streamer.token_secrets import derive_secrets
from tests.audio_compare import COMPARE_RATE, MIN_CORRELATION, aligned_correlation
from tests.edge.conftest import Client, ManualClock
from tests.edge.offline_device import auth, new_device
from tests.masters import decode_pcm, make_master
from tests.transcoder.conftest import clear_segments
from transcoder.pipeline import ingest_master

pytestmark = pytest.mark.slow

MASTER_S = 8.0
TRACK_ID = "OFFLINE-E2E-1"


@dataclass(frozen=True)
class Ingested:
    master: Path
    record: TrackRecord
    store: LocalObjectStore
    ring: KeyRing
    settings: Settings


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    root = tmp_path_factory.mktemp("offline-e2e")
    # 4 s segments, a new key every segment: the download needs several keys per rendition.
    settings = load_settings(
        environ={}, data_dir=root / "data", segment_target_s=4, key_rotation_segments=1
    )
    kek = new_kek()
    ring = KeyRing(kek.kek_id, (kek,))
    store = LocalObjectStore(root / "objects")
    master = make_master(root / "master.flac", seconds=MASTER_S)
    result = ingest_master(
        master,
        track_id=TRACK_ID,
        metadata={},
        settings=settings,
        store=store,
        ring=ring,
        work_dir=root / "work",
    )
    return Ingested(master, result.record, store, ring, settings)


async def test_a_device_plays_its_download_offline(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    ingested: Ingested,
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    secrets = derive_secrets(b"offline-e2e-" + b"x" * 32)
    app = create_app(
        ingested.settings,
        ingested.store,
        SQLiteSessionStore(tmp_path / "sessions.sqlite3"),
        ingested.ring,
        clock=clock,
        secrets=secrets,
        hls_dir=tmp_path / "hls",
        offline_store=SQLiteOfflineStore(tmp_path / "offline.sqlite3"),
    )
    client = await aiohttp_client(app)
    token = issue_listener_token(secrets.platform_key, "fan", "premium", "SE", 3600, clock())
    device = new_device()
    response = await client.post(
        "/v1/devices", json={"public_key": device.public_b64}, headers=auth(token)
    )
    device_id = (await response.json())["device_id"]
    response = await client.post(
        f"/v1/devices/{device_id}/licences",
        json={"track_id": TRACK_ID, "codecs": ["fLaC", "mp4a.40.2"]},
        headers=auth(token),
    )
    issued = await response.json()
    assert response.status == 201, issued
    licence = issued["licence"]
    assert {d["rendition"] for d in issued["downloads"]} == {"aac_256", "flac"}

    base = ingested.settings.base_url
    reference = np.frombuffer(decode_pcm(ingested.master, COMPARE_RATE), dtype=np.float32)
    for download in issued["downloads"]:
        name, url = download["rendition"], download["playlist_url"]

        async def get(target: str) -> bytes:
            reply = await client.get(target[len(base) :])
            assert reply.status == 200, (target, reply.status)
            return await reply.read()

        media = m3u8.loads((await get(url)).decode(), uri=url)
        parts = [await get(urljoin(url, media.segment_map[0].uri))]
        for index, segment in enumerate(media.segments):
            key = segment.key
            assert key is not None and key.uri is not None
            key_id = key.uri.rsplit("/", 1)[1]
            content_key = device.unwrap(licence, key_id)  # from the licence, with its own key
            if key.iv:
                iv = bytes.fromhex(key.iv.removeprefix("0x").removeprefix("0X"))
            else:
                iv = ((media.media_sequence or 0) + index).to_bytes(16, "big")
            body = await get(urljoin(url, segment.uri))
            parts.append(decrypt_segment(body, content_key, iv))
        clear = b"".join(parts)
        assert clear == clear_segments(ingested.store, ingested.ring, ingested.record, name)
        path = tmp_path / f"{name}.mp4"
        path.write_bytes(clear)
        decoded = np.frombuffer(decode_pcm(path, COMPARE_RATE), dtype=np.float32)
        correlation, _ = aligned_correlation(reference, decoded)
        assert correlation >= MIN_CORRELATION[name], f"{name}: {correlation:.4f}"
        # The key URL of the playlist, followed with the download session: refused.
        refused = await client.get(urljoin(url, media.segments[0].key.uri)[len(base) :])  # type: ignore[union-attr]
        assert refused.status == 403
