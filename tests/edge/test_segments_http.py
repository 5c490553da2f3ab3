"""Segments from the edge (--segments python): the session token, Range, ETag, traversal,
single-flight."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from yarl import URL

from cdn_edge.state import METRICS, SEGMENTS
from manifests import parse_media
from streamer.objects.port import IMMUTABLE
from streamer.settings import Settings
from tests.edge.builders import BuiltTrack, CountingReader
from tests.edge.conftest import Client, ManualClock, path_of

OpenSession = Callable[..., Awaitable[dict[str, Any]]]
SEGMENT = "aac_96/seg_00001.m4s"


@pytest.fixture
async def signature(client: Client, open_session: OpenSession, settings: Settings) -> str:
    """The session token of a free session on trk1 v1, as its playlist URL carries it."""
    doc = await open_session("free")
    url = doc["playlist_url"].rsplit("/", 1)[0] + "/aac_96/playlist.m3u8"
    text = await (await client.get(path_of(settings, url))).text()
    assert parse_media(text).segments[1].uri == "seg_00001.m4s"
    return str(urlsplit(doc["playlist_url"]).path.split("/")[3])


def seg(name: str, token: str) -> str:
    return f"/v1/s/{token}/{name}"


async def test_full_segment_with_validators(
    client: Client, signature: str, track: BuiltTrack
) -> None:
    response = await client.get(seg(SEGMENT, signature))
    assert response.status == 200
    body = await response.read()
    assert body == track.stored[SEGMENT]
    assert response.headers["ETag"] == f'"{hashlib.sha256(body).hexdigest()}"'
    assert response.headers["Cache-Control"] == IMMUTABLE
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.content_type == "audio/mp4"
    assert response.headers["Access-Control-Allow-Origin"] == "*"


async def test_range_requests(client: Client, signature: str, track: BuiltTrack) -> None:
    body = track.stored[SEGMENT]
    response = await client.get(seg(SEGMENT, signature), headers={"Range": "bytes=10-109"})
    assert response.status == 206
    assert await response.read() == body[10:110]
    assert response.headers["Content-Range"] == f"bytes 10-109/{len(body)}"
    response = await client.get(seg(SEGMENT, signature), headers={"Range": "bytes=-16"})
    assert response.status == 206
    assert await response.read() == body[-16:]
    response = await client.get(seg(SEGMENT, signature), headers={"Range": f"bytes={len(body)}-"})
    assert response.status == 416
    assert response.headers["Content-Range"] == f"bytes */{len(body)}"
    assert (await response.json())["error"] == "range_not_satisfiable"
    # A stale If-Range gets the whole, current body.
    response = await client.get(
        seg(SEGMENT, signature), headers={"Range": "bytes=0-9", "If-Range": '"old"'}
    )
    assert response.status == 200
    assert await response.read() == body


async def test_if_none_match(client: Client, signature: str) -> None:
    first = await client.get(seg(SEGMENT, signature))
    etag = first.headers["ETag"]
    response = await client.get(seg(SEGMENT, signature), headers={"If-None-Match": etag})
    assert response.status == 304
    assert await response.read() == b""
    assert response.headers["ETag"] == etag
    response = await client.get(seg(SEGMENT, signature), headers={"If-None-Match": '"other"'})
    assert response.status == 200


async def test_head(client: Client, signature: str, track: BuiltTrack) -> None:
    response = await client.head(seg(SEGMENT, signature))
    assert response.status == 200
    assert int(response.headers["Content-Length"]) == len(track.stored[SEGMENT])


@pytest.mark.parametrize(
    "raw_path",
    [
        "/v1/s/TOKEN/../../../secrets/kek.json",
        "/v1/s/TOKEN/aac_96/..%2F..%2F..%2Fsecrets%2Fkek.json",
        "/v1/s/TOKEN/%2e%2e/%2e%2e",
        "/v1/s/TOKEN/aac_96/.hidden",
        "/v1/s/TOKEN/aac_96//seg_00001.m4s",
        "/v1/s/TOKEN/%2e%2e/seg_00001.m4s",
        "/v1/s/TOKEN/aac_96/..%2F..%2Fv2%2Ftrack.json",
        "/v1/s/TOKEN/aac_96/seg%00.m4s",
        "/v1/s/TOKEN/a/b/c/d/e/f.m4s",
        "/v1/s/TOKEN/aac_96/" + "a" * 300,
    ],
)
async def test_traversal_and_malformed_names_never_touch_the_store(
    client: Client, signature: str, reader: CountingReader, raw_path: str
) -> None:
    before = len(reader.calls)
    path = raw_path.replace("TOKEN", signature)
    url = client.make_url("/").join(URL(path, encoded=True))
    response = await client.session.get(URL(str(url), encoded=True))
    assert response.status in (400, 404), response.status
    if response.content_type == "application/json":
        assert (await response.json())["error"] in ("malformed_name", "not_found")
    assert reader.calls[before:] == []


async def test_names_not_in_the_record_are_404_without_a_store_read(
    client: Client, signature: str, reader: CountingReader
) -> None:
    await client.get(seg(SEGMENT, signature))  # loads the record
    before = len(reader.calls)
    for name in ("aac_96/seg_99999.m4s", "aac_96/index.m3u8", "aac_96/track.json"):
        response = await client.get(seg(name, signature))
        assert response.status == 404, name
    assert reader.calls[before:] == []


async def test_signature_required_and_bound(
    client: Client, signature: str, open_session: OpenSession, clock: ManualClock
) -> None:
    response = await client.get(f"/v1/s/{SEGMENT}")
    assert response.status == 404  # no token: no such path
    response = await client.get(seg(SEGMENT, signature[:-2] + "xx"))
    assert response.status == 401
    # The track and version are the token's: a rendition it was not offered is not there.
    aac_only = await open_session("free", codecs=["mp4a.40.2"])
    token = urlsplit(aac_only["playlist_url"]).path.split("/")[3]
    assert (await client.get(seg("aac_96/seg_00000.m4s", token))).status == 200
    assert (await client.get(seg("opus_96/seg_00000.m4s", token))).status == 404
    clock.advance(3 * 24 * 3600)
    response = await client.get(seg(SEGMENT, signature))
    assert response.status == 401
    assert (await response.json())["error"] == "token_expired"


async def test_free_signature_does_not_open_premium_segments(
    client: Client, signature: str, reader: CountingReader
) -> None:
    response = await client.get(seg("flac/seg_00000.m4s", signature))
    assert response.status == 403
    assert (await response.json())["error"] == "not_entitled"
    assert reader.gets("tracks/trk1/v1/flac/seg_00000.m4s") == 0


async def test_cache_hits_and_single_flight_over_http(
    client: Client, signature: str, reader: CountingReader
) -> None:
    gate = threading.Event()
    inner_get = reader.inner.get

    def slow_get(key: str) -> bytes:
        gate.wait(timeout=10)
        return inner_get(key)

    reader.inner.get = slow_get  # type: ignore[method-assign]
    key = f"tracks/trk1/v1/{SEGMENT}"
    requests = [asyncio.create_task(client.get(seg(SEGMENT, signature))) for _ in range(20)]
    for _ in range(100):
        await asyncio.sleep(0.01)
        if client.app[SEGMENTS].stats.coalesced == 19:
            break
    gate.set()
    responses = await asyncio.gather(*requests)
    assert [r.status for r in responses] == [200] * 20
    bodies = {await r.read() for r in responses}
    assert len(bodies) == 1
    assert reader.gets(key) == 1
    response = await client.get(seg(SEGMENT, signature))
    assert response.status == 200
    assert reader.gets(key) == 1
    metrics = client.app[METRICS]
    assert metrics.cache_hits._value.get() >= 1
    assert metrics.cache_misses._value.get() == 20


async def test_corrupt_object_is_not_served_or_cached(
    client: Client, signature: str, track: BuiltTrack, reader: CountingReader
) -> None:
    key = f"tracks/trk1/v1/{SEGMENT}"
    reader.inner.put(key, b"x" * len(track.stored[SEGMENT]), "audio/mp4")
    response = await client.get(seg(SEGMENT, signature))
    assert response.status == 503
    assert client.app[SEGMENTS].peek(key) is None
