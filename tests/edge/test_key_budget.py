"""Key budgets: a session gets every key it may need, a scraping listener does not.

The track here is 7 min 24 s long (74 segments of 6 s, a key per 10 segments), like the long
track a player ran out of keys on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from cdn_edge.policy.key_budget import (
    LISTENER_BUDGET,
    SESSION_MARGIN,
    KeyBudget,
    keys_to_pull,
    session_key_budget,
)
from cdn_edge.state import METRICS
from drm import KeyRing, decrypt_segment
from manifests import parse_media
from streamer.settings import Settings
from tests.edge.builders import BuiltTrack, build_track
from tests.edge.conftest import Client, ManualClock, path_of

OpenSession = Callable[..., Awaitable[dict[str, Any]]]
SEGMENTS, ROTATION = 74, 10
PERIODS = 8  # ceil(74 / 10)


@pytest.fixture
def track(ring: KeyRing) -> BuiltTrack:
    return build_track(ring, "trk1", "v1", segments=SEGMENTS, rotation=ROTATION, segment_bytes=64)


def test_session_budget_covers_a_pull_of_every_offered_rendition(track: BuiltTrack) -> None:
    renditions = track.record.renditions
    assert keys_to_pull(renditions) == len(renditions) * PERIODS
    budget = session_key_budget(renditions, track.record.duration_s)
    assert budget.capacity >= keys_to_pull(renditions) * 1.5 + SESSION_MARGIN
    # Refilled once over the track's length; short tracks no faster than once a minute.
    assert budget.refill_per_s * track.record.duration_s == pytest.approx(budget.capacity)
    assert session_key_budget(renditions[:1], 5.0).refill_per_s == pytest.approx(
        session_key_budget(renditions[:1], 5.0).capacity / 60
    )
    with pytest.raises(ValueError, match="capacity"):
        KeyBudget(0, 1.0)


async def _pull_every_rendition(
    client: Client, settings: Settings, doc: dict[str, Any], track: BuiltTrack | None = None
) -> list[int]:
    """As ffmpeg does, once per rendition, each EXT-X-KEY's key; with `track`, each key is
    checked by decrypting the segment it opens."""
    statuses = []
    base = doc["playlist_url"].rsplit("/", 1)[0]
    for rendition in doc["variants"]:
        playlist_url = f"{base}/{rendition}/playlist.m3u8"
        response = await client.get(path_of(settings, playlist_url))
        assert response.status == 200
        media = parse_media(await response.text())
        for index, (segment, (key, iv)) in enumerate(
            zip(media.segments, media.segment_keys(), strict=True)
        ):
            if segment.key is None:
                continue
            assert key is not None and key.uri is not None and iv is not None
            fetched = await client.get(path_of(settings, key.uri, relative_to=playlist_url))
            statuses.append(fetched.status)
            if fetched.status != 200:
                continue
            if track is not None:
                body = await fetched.read()
                name = f"{rendition}/seg_{index:05d}.m4s"
                assert decrypt_segment(track.stored[name], body, iv) == track.clear[name]
    return statuses


@pytest.mark.parametrize("tier", ["free", "premium"])
async def test_one_client_pulls_every_rendition_of_a_long_track(
    client: Client, open_session: OpenSession, settings: Settings, track: BuiltTrack, tier: str
) -> None:
    doc = await open_session(tier)
    statuses = await _pull_every_rendition(client, settings, doc, track)
    assert len(statuses) == len(doc["variants"]) * PERIODS
    assert set(statuses) == {200}
    # And again, as a second player would after a restart, within the margin: nothing refused
    # for the keys hls.js would fetch (one per distinct URI).
    playlist_url = doc["playlist_url"].rsplit("/", 1)[0] + f"/{doc['variants'][0]}/playlist.m3u8"
    response = await client.get(path_of(settings, playlist_url))
    uris = {k.uri for k, _ in parse_media(await response.text()).segment_keys() if k}
    for uri in sorted(uris, key=str):
        key_path = path_of(settings, str(uri), relative_to=playlist_url)
        assert (await client.get(key_path)).status == 200


async def test_a_scraping_listener_is_refused(
    client: Client, open_session: OpenSession, settings: Settings, clock: ManualClock
) -> None:
    # One account, session after session, every key of every rendition at once: the
    # listener's budget runs out long before its sessions' budgets do.
    statuses: list[int] = []
    for _ in range(LISTENER_BUDGET.capacity // (5 * PERIODS) + 2):
        doc = await open_session("free")
        statuses += await _pull_every_rendition(client, settings, doc)
    assert statuses.count(200) == LISTENER_BUDGET.capacity
    assert set(statuses[LISTENER_BUDGET.capacity :]) == {429}
    metrics = client.app[METRICS]
    assert metrics.refusals.labels("rate_limited")._value.get() == statuses.count(429)
    # Real-time playback goes on: the budget refills at a listener's pace.
    clock.advance(2 / LISTENER_BUDGET.refill_per_s)  # two keys' worth
    doc = await open_session("free")
    assert (await _pull_every_rendition(client, settings, doc))[:2] == [200, 200]


async def test_a_session_past_its_budget_is_refused_with_retry_after(
    client: Client, open_session: OpenSession, settings: Settings, clock: ManualClock
) -> None:
    doc = await open_session("free")
    playlist_url = doc["playlist_url"].rsplit("/", 1)[0] + "/aac_96/playlist.m3u8"
    response = await client.get(path_of(settings, playlist_url))
    key_uri = parse_media(await response.text()).segments[0].key.uri  # type: ignore[union-attr]
    key_path = path_of(settings, str(key_uri), relative_to=playlist_url)
    statuses = [(await client.get(key_path)).status for _ in range(400)]
    granted = statuses.count(200)
    assert granted >= 5 * PERIODS * 1.5 + SESSION_MARGIN
    assert set(statuses[granted:]) == {429}
    refused = await client.get(key_path)
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "fetched its" in (await refused.json())["message"]
