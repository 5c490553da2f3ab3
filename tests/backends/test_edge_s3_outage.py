"""The edge over S3: cached segments keep flowing while S3 is down, uncached ones get 503 with
Retry-After, and everything recovers when S3 returns, without restarting the edge."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urljoin

import m3u8
import pytest
from aiohttp.test_utils import TestClient

from cdn_edge.app import create_app
from cdn_edge.listener_auth import issue_listener_token
from drm import KeyRing, new_kek
from streamer.objects.s3 import S3ObjectStore
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.token_secrets import derive_secrets
from tests.backends.conftest import PrivateS3Server
from tests.masters import make_master
from transcoder.pipeline import ingest_master

pytestmark = [pytest.mark.services, pytest.mark.slow]


async def test_edge_rides_out_an_s3_outage(
    private_s3: PrivateS3Server,
    tmp_path: Path,
    aiohttp_client,
) -> None:
    settings = private_s3.settings(tmp_path, bucket="edge-outage")
    store = S3ObjectStore.from_settings(settings, retry_deadline_s=1.0)
    kek = new_kek()
    ring = KeyRing(kek.kek_id, (kek,))
    master = make_master(tmp_path / "song.flac", seconds=20.0)
    ingest_master(
        master, track_id="outage", metadata={}, settings=settings, store=store, ring=ring,
        work_dir=tmp_path / "work",
    )  # fmt: skip
    secrets = derive_secrets(b"outage-" + b"s" * 32)
    app = create_app(
        settings, store, SQLiteSessionStore(tmp_path / "sessions.sqlite3"), ring,
        secrets=secrets, hls_dir=tmp_path / "hls",
    )  # fmt: skip
    client: TestClient = await aiohttp_client(app)
    base = settings.base_url

    def path(url: str) -> str:
        assert url.startswith(base)
        return url[len(base) :]

    token = issue_listener_token(secrets.platform_key, "u1", "free", "SE", 600, time.time())
    response = await client.post(
        "/v1/sessions",
        json={"track_id": "outage", "device": {"codecs": ["mp4a.40.2"]}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 201, await response.text()
    main_url = (await response.json())["playlist_url"]
    media_url = urljoin(main_url, "aac_96/playlist.m3u8")
    media = m3u8.loads(await (await client.get(path(media_url))).text(), uri=media_url)
    first, second = (urljoin(media_url, s.uri) for s in media.segments[:2])
    cached = await client.get(path(first))
    assert cached.status == 200
    body = await cached.read()

    private_s3.stop()
    during = await client.get(path(first))
    assert during.status == 200 and await during.read() == body  # served from the edge's cache
    refused = await client.get(path(second))
    assert refused.status == 503
    assert int(refused.headers["Retry-After"]) >= 1
    assert (await refused.json())["error"]

    private_s3.start()
    recovered = await client.get(path(second))
    assert recovered.status == 200 and len(await recovered.read()) > 1000
