"""The catalog cache: immutable versions kept, the current pointer refreshed, loads shared."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from cdn_edge.errors import TrackNotFound
from cdn_edge.playback.catalog_cache import CURRENT_TTL_S, CatalogCache
from drm import KeyRing
from manifests import parse_media
from streamer.catalog import current_record_key, encode_track_record, version_record_key
from streamer.errors import CatalogError, StorageError
from streamer.objects.memory import InMemoryObjectStore
from streamer.settings import Settings
from tests.edge.builders import BuiltTrack, CountingReader, build_track, publish
from tests.edge.conftest import Client, ManualClock, path_of


def cache_over(reader: CountingReader, clock: ManualClock) -> CatalogCache:
    async def read(key: str) -> bytes:
        await asyncio.sleep(0)  # a real read yields to the loop
        return reader.get(key)

    return CatalogCache(read, clock)


async def test_versions_are_read_once(reader: CountingReader, clock: ManualClock) -> None:
    cache = cache_over(reader, clock)
    tracks = await asyncio.gather(*(cache.version("trk1", "v1") for _ in range(10)))
    assert all(t is tracks[0] for t in tracks)
    clock.advance(10 * CURRENT_TTL_S)
    await cache.version("trk1", "v1")
    assert reader.gets(version_record_key("trk1", "v1")) == 1
    assert tracks[0].objects["aac_96/seg_00000.m4s"].key == "tracks/trk1/v1/aac_96/seg_00000.m4s"


async def test_current_is_refreshed_after_its_ttl(
    store: InMemoryObjectStore, reader: CountingReader, clock: ManualClock, ring: KeyRing
) -> None:
    cache = cache_over(reader, clock)
    assert (await cache.current("trk1")).record.version == "v1"
    publish(store, build_track(ring, "trk1", "v2"))
    assert (await cache.current("trk1")).record.version == "v1"  # still fresh
    clock.advance(CURRENT_TTL_S)
    current = await cache.current("trk1")
    assert current.record.version == "v2"
    assert await cache.version("trk1", "v2") is current  # one object per version
    assert (await cache.version("trk1", "v1")).record.version == "v1"  # old still plays


async def test_current_stays_while_the_store_is_down(
    reader: CountingReader, clock: ManualClock
) -> None:
    down = False

    async def read(key: str) -> bytes:
        if down:
            raise StorageError("S3 is down")
        return reader.get(key)

    cache = CatalogCache(read, clock)
    known = await cache.current("trk1")
    down = True
    clock.advance(CURRENT_TTL_S)
    assert await cache.current("trk1") is known  # new sessions go on playing it
    with pytest.raises(StorageError):
        await cache.current("trk2")  # a track it never knew cannot be made up
    down = False
    clock.advance(CURRENT_TTL_S)
    await cache.current("trk1")
    assert reader.gets(current_record_key("trk1")) == 2  # asked again once the TTL passed


async def test_unknown_tracks_are_remembered_briefly(
    store: InMemoryObjectStore, reader: CountingReader, clock: ManualClock, ring: KeyRing
) -> None:
    cache = cache_over(reader, clock)
    for _ in range(3):
        with pytest.raises(TrackNotFound):
            await cache.current("new")
    assert reader.gets(current_record_key("new")) == 1
    publish(store, build_track(ring, "new", "v1"))
    clock.advance(CURRENT_TTL_S)
    assert (await cache.current("new")).record.track_id == "new"
    with pytest.raises(TrackNotFound, match="version 'v9'"):
        await cache.version("new", "v9")


async def test_a_record_under_the_wrong_key_is_refused(
    store: InMemoryObjectStore, reader: CountingReader, clock: ManualClock, ring: KeyRing
) -> None:
    other = build_track(ring, "trk2", "v1").record
    store.put(version_record_key("trk1", "v7"), encode_track_record(other), "application/json")
    with pytest.raises(CatalogError, match="expected track 'trk1' version 'v7'"):
        await cache_over(reader, clock).version("trk1", "v7")


async def test_sessions_stay_on_their_version_after_a_reingest(
    client: Client,
    open_session: Callable[..., Awaitable[dict[str, Any]]],
    settings: Settings,
    store: InMemoryObjectStore,
    clock: ManualClock,
    ring: KeyRing,
    track: BuiltTrack,
) -> None:
    old = await open_session("free")
    publish(store, build_track(ring, "trk1", "v2"))
    clock.advance(CURRENT_TTL_S)
    new = await open_session("free")
    assert (old["track"]["version"], new["track"]["version"]) == ("v1", "v2")
    media = old["playlist_url"].rsplit("/", 1)[0] + "/aac_96/playlist.m3u8"
    text = await (await client.get(path_of(settings, media))).text()
    first = path_of(settings, parse_media(text).segments[0].uri, relative_to=media)
    response = await client.get(first)
    assert response.status == 200
    assert await response.read() == track.stored["aac_96/seg_00000.m4s"]  # v1's bytes


async def test_decoded_versions_are_bounded_by_their_objects(
    store: InMemoryObjectStore, reader: CountingReader, clock: ManualClock, ring: KeyRing
) -> None:
    """Long tracks weigh more: the cache holds at most `max_objects` objects of decoded
    records, the current pointers included, and reads an evicted one again."""
    for n in range(2, 5):
        publish(store, build_track(ring, f"trk{n}", "v1"))

    async def read(key: str) -> bytes:
        return reader.get(key)

    one = len((await cache_over(reader, clock).current("trk1")).objects)
    cache = CatalogCache(read, clock, max_objects=2 * one)
    for n in range(1, 5):
        await cache.current(f"trk{n}")
        assert cache.objects_held <= 2 * one

    assert cache.objects_held == 2 * one
    assert cache.cached_version("trk1", "v1") is None  # the oldest went first
    assert cache.cached_version("trk4", "v1") is not None
    before = reader.gets(current_record_key("trk1"))
    assert (await cache.current("trk1")).record.track_id == "trk1"  # its pointer went too
    assert reader.gets(current_record_key("trk1")) == before + 1


async def test_one_version_over_the_bound_is_still_served(
    reader: CountingReader, clock: ManualClock
) -> None:
    async def read(key: str) -> bytes:
        return reader.get(key)

    cache = CatalogCache(read, clock, max_objects=1)
    track = await cache.current("trk1")
    assert cache.cached_version("trk1", "v1") is track  # the newest is always kept
