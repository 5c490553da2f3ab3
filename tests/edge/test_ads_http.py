"""Ad breaks over HTTP: interstitials in free playlists, asset lists, ad media, counting, faults."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from cdn_edge.ads.service import UNDECIDED_TTL_S
from cdn_edge.analytics_auth import issue_analytics_token
from cdn_edge.app import create_app
from cdn_edge.state import ADS
from cdn_edge.web.access_log import AccessLog
from drm import KeyRing
from manifests import parse_media
from streamer.ads.campaigns import Campaign
from streamer.ads.port import AdDecisionRecord, AdStore
from streamer.ads.sqlite import SQLiteAdStore
from streamer.objects.memory import InMemoryObjectStore
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.settings import Settings
from streamer.token_secrets import TokenSecrets
from tests.edge.ad_builders import AD_SEGMENTS, FaultyAdStore, publish_ad
from tests.edge.builders import CountingReader
from tests.edge.conftest import Client, ManualClock, path_of

EVERY_S = 300.0
OpenSession = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def ad_store(tmp_path: Path, store: InMemoryObjectStore) -> FaultyAdStore:
    publish_ad(store)
    inner = SQLiteAdStore(tmp_path / "ads.sqlite3")
    inner.put_campaign(Campaign("c1", "spot-1", daily_goal=1000, frequency_cap=5))
    return FaultyAdStore(inner)


@pytest.fixture
def edge_app(
    settings: Settings,
    reader: CountingReader,
    session_store: SQLiteSessionStore,
    ring: KeyRing,
    clock: ManualClock,
    edge_secrets: TokenSecrets,
    hls_dir: Path,
    ad_store: AdStore,
    tmp_path: Path,
) -> web.Application:
    ad_settings = dataclasses.replace(
        settings, ads=True, ad_slot_s=10, ad_break_every_s=EVERY_S, ad_decision_timeout_s=0.5
    )
    app = create_app(
        ad_settings,
        reader,
        session_store,
        ring,
        clock=clock,
        secrets=edge_secrets,
        hls_dir=hls_dir,
        access_log=AccessLog(io.StringIO(), clock),
        ad_store=ad_store,
        ad_spool=tmp_path / "ad-spool.jsonl",
    )
    service = app[ADS]
    assert service is not None
    service.record_lag_s = 0.01  # a miss reads the store again after this (real time)
    return app


async def _media(client: Client, settings: Settings, session: dict[str, Any]) -> tuple[str, str]:
    url = session["playlist_url"]
    media_url = url.replace("main.m3u8", f"{session['variants'][0]}/playlist.m3u8")
    response = await client.get(path_of(settings, media_url))
    assert response.status == 200
    return media_url, await response.text()


async def _asset_list(client: Client, settings: Settings, media_url: str, n: int) -> Any:
    """The break's asset list, or None: 204, no ad in this break."""
    response = await client.get(path_of(settings, f"../ads/breaks/{n}.json", media_url))
    assert response.status in (200, 204), await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    return await response.json() if response.status == 200 else None


def _metric(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


async def test_free_playlists_carry_interstitials_and_premium_ones_none(
    client: Client, settings: Settings, open_session: OpenSession
) -> None:
    _, free = await _media(client, settings, await open_session("free", codecs=["mp4a.40.2"]))
    _, premium = await _media(client, settings, await open_session("premium", codecs=["mp4a.40.2"]))
    assert "EXT-X-DATERANGE" not in premium and "PROGRAM-DATE-TIME" not in premium
    lines = [line for line in free.splitlines() if line.startswith("#EXT-X-DATERANGE")]
    # A 24 s track of 6 s segments, a slot every 10 s: the pre-roll, then at 12 s.
    assert lines == [
        '#EXT-X-DATERANGE:ID="ad-break-0",CLASS="com.apple.hls.interstitial",'
        'START-DATE="2000-01-01T00:00:00.000Z",CUE="PRE",X-ASSET-LIST="../ads/breaks/0.json",'
        'X-RESUME-OFFSET=0,X-RESTRICT="SKIP,JUMP"',
        '#EXT-X-DATERANGE:ID="ad-break-1",CLASS="com.apple.hls.interstitial",'
        'START-DATE="2000-01-01T00:00:12.000Z",X-ASSET-LIST="../ads/breaks/1.json",'
        'X-RESUME-OFFSET=0,X-RESTRICT="SKIP,JUMP"',
    ]
    assert "#EXT-X-PROGRAM-DATE-TIME:2000-01-01T00:00:00.000Z" in free
    parsed, plain = parse_media(free), parse_media(premium)  # strictly: every tag is modelled
    assert [(s.uri, s.duration) for s in parsed.segments] == [
        (s.uri, s.duration) for s in plain.segments
    ]
    breaks = [
        (i, r.id, r.cue, dict(r.client_attributes)["X-ASSET-LIST"])
        for i, s in enumerate(parsed.segments)
        for r in s.date_ranges
    ]
    assert breaks == [
        (0, "ad-break-0", "PRE", "../ads/breaks/0.json"),
        (2, "ad-break-1", None, "../ads/breaks/1.json"),
    ]


async def test_a_free_session_gets_a_pre_roll_then_no_break_until_the_interval_has_passed(
    client: Client,
    settings: Settings,
    open_session: OpenSession,
    clock: ManualClock,
    edge_app: web.Application,
    ad_store: FaultyAdStore,
) -> None:
    session = await open_session("free", codecs=["mp4a.40.2"])
    media_url, _ = await _media(client, settings, session)
    pre = await _asset_list(client, settings, media_url, 0)
    [asset] = pre["ASSETS"]
    assert asset["DURATION"] == 2.0 * AD_SEGMENTS
    assert f"/ads/0/c1/spot-1/a1/{session['variants'][0]}/playlist.m3u8" in asset["URI"]
    assert await _asset_list(client, settings, media_url, 0) == pre  # asked again: same decision
    assert await _asset_list(client, settings, media_url, 1) is None  # too soon
    clock.advance(EVERY_S)
    later = await open_session("free", codecs=["mp4a.40.2"])  # the next track
    later_url, _ = await _media(client, settings, later)
    assert len((await _asset_list(client, settings, later_url, 0))["ASSETS"]) == 1
    await edge_app[ADS].recorder.flush()  # type: ignore[union-attr]
    day = datetime.fromtimestamp(clock(), UTC).date()
    reasons = sorted(d.reason for d in ad_store.inner.decisions_of("u1", day))
    assert reasons == ["not_due", "served", "served"]


async def test_premium_sessions_get_no_break_and_no_decision_is_recorded(
    client: Client,
    settings: Settings,
    open_session: OpenSession,
    edge_app: web.Application,
    ad_store: FaultyAdStore,
    clock: ManualClock,
) -> None:
    session = await open_session("premium", codecs=["mp4a.40.2"])
    media_url = session["playlist_url"].replace("main.m3u8", "aac_96/playlist.m3u8")
    assert await _asset_list(client, settings, media_url, 0) is None
    await edge_app[ADS].recorder.flush()  # type: ignore[union-attr]
    assert ad_store.inner.decisions_of("u1", datetime.fromtimestamp(clock(), UTC).date()) == []


async def test_impressions_and_quartiles_count_once_from_deliveries_and_beacons(
    client: Client,
    settings: Settings,
    open_session: OpenSession,
    edge_app: web.Application,
    session_store: SQLiteSessionStore,
    edge_secrets: TokenSecrets,
    clock: ManualClock,
) -> None:
    session = await open_session("free", codecs=["mp4a.40.2"])
    media_url, _ = await _media(client, settings, session)
    [asset] = (await _asset_list(client, settings, media_url, 0))["ASSETS"]
    ad_playlist = await client.get(path_of(settings, asset["URI"]))
    assert ad_playlist.status == 200
    parsed = parse_media(await ad_playlist.text())
    assert all(key is None for key, _ in parsed.segment_keys())  # clear: no key requests
    for uri in ["init.mp4", *(s.uri for s in parsed.segments)] * 2:  # each fetched twice
        response = await client.get(path_of(settings, uri, asset["URI"]))
        assert response.status == 200
    beacons = path_of(settings, "../ads/0/events", media_url)
    response = await client.post(
        beacons, json={"campaign_id": "c1", "events": ["impression", "complete"]}
    )
    assert response.status == 202
    bad = await client.post(beacons, json={"campaign_id": "c1", "events": ["click"]})
    assert bad.status == 400
    await edge_app[ADS].recorder.flush()  # type: ignore[union-attr]

    analytics = issue_analytics_token(
        edge_secrets.platform_key, "ads-team", 600, clock(), all_tracks=True
    )
    report = await client.get(
        "/v1/ads/campaigns/c1/report", headers={"Authorization": f"Bearer {analytics}"}
    )
    assert report.status == 200
    assert (await report.json())["events"] == {
        "impression": 1,
        "first_quartile": 1,
        "midpoint": 1,
        "third_quartile": 1,
        "complete": 1,
    }
    # Ads are not tracks: no track delivery was recorded for them, no play, no session.
    assert session_store.deliveries_of([session["session_id"]]).get(session["session_id"], ()) == ()
    today = datetime.fromtimestamp(clock(), UTC).date()
    assert sum(session_store.plays_by_day("trk1", today, today).values()) == 0
    assert sum(session_store.plays_by_day("spot-1", today, today).values()) == 0
    assert (await client.post("/v1/sessions", json={"track_id": "spot-1"})).status in (401, 404)


async def test_a_failing_ad_store_skips_the_break_and_says_so_in_metrics(
    client: Client, settings: Settings, open_session: OpenSession, ad_store: FaultyAdStore
) -> None:
    session = await open_session("free", codecs=["mp4a.40.2"])
    media_url, _ = await _media(client, settings, session)
    ad_store.reads_fail = True
    assert await _asset_list(client, settings, media_url, 0) is None
    metrics = await (await client.get("/metrics")).text()
    assert _metric(metrics, 'edge_ad_breaks_total{outcome="skipped_error"}') == 1


async def test_a_slow_ad_decision_is_abandoned_at_its_deadline(
    client: Client, settings: Settings, open_session: OpenSession, ad_store: FaultyAdStore
) -> None:
    session = await open_session("free", codecs=["mp4a.40.2"])
    media_url, _ = await _media(client, settings, session)
    ad_store.read_delay_s = 1.0  # past the 0.5 s deadline
    assert await _asset_list(client, settings, media_url, 0) is None
    metrics = await (await client.get("/metrics")).text()
    assert _metric(metrics, 'edge_ad_breaks_total{outcome="skipped_timeout"}') == 1


async def test_decisions_and_events_wait_in_the_spool_while_the_store_is_down(
    client: Client,
    settings: Settings,
    open_session: OpenSession,
    edge_app: web.Application,
    ad_store: FaultyAdStore,
    clock: ManualClock,
    tmp_path: Path,
) -> None:
    ad_store.writes_fail = True  # reads still answer: the break is decided, not written
    session = await open_session("free", codecs=["mp4a.40.2"])
    media_url, _ = await _media(client, settings, session)
    [asset] = (await _asset_list(client, settings, media_url, 0))["ASSETS"]
    ad_playlist = parse_media(await (await client.get(path_of(settings, asset["URI"]))).text())
    first = ad_playlist.segments[0].uri  # 0-2 s of 8 s: the impression and the first quartile
    assert (await client.get(path_of(settings, first, asset["URI"]))).status == 200
    recorder = edge_app[ADS].recorder  # type: ignore[union-attr]
    await recorder.flush()
    assert recorder.spooled_count() == 3  # the decision and two events
    await recorder.flush()  # still down: replayed into the spool, not lost, not doubled
    assert recorder.spooled_count() == 3
    ad_store.writes_fail = False
    await recorder.flush()
    assert recorder.spooled_count() == 0
    day = datetime.fromtimestamp(clock(), UTC).date()
    assert [d.reason for d in ad_store.inner.decisions_of("u1", day)] == ["served"]
    assert ad_store.inner.event_counts("c1", day)["impression"] == 1


async def _served_break(
    client: Client, settings: Settings, open_session: OpenSession
) -> tuple[str, str]:
    """A free session's media playlist URL and its pre-roll's ad playlist URL (campaign c1)."""
    media_url, _ = await _media(client, settings, await open_session("free", codecs=["mp4a.40.2"]))
    [asset] = (await _asset_list(client, settings, media_url, 0))["ASSETS"]
    return media_url, str(asset["URI"])


async def test_an_ad_path_naming_another_campaign_or_ad_than_the_decision_is_refused(
    client: Client,
    settings: Settings,
    open_session: OpenSession,
    edge_app: web.Application,
    ad_store: FaultyAdStore,
    store: InMemoryObjectStore,
    clock: ManualClock,
) -> None:
    publish_ad(store, "spot-2", "b1")
    ad_store.inner.put_campaign(Campaign("c2", "spot-2", daily_goal=1000, frequency_cap=5))
    media_url, uri = await _served_break(client, settings, open_session)
    assert "/ads/0/c1/spot-1/a1/" in uri
    forged = {
        "another campaign, its own ad": uri.replace("/c1/spot-1/a1/", "/c2/spot-2/b1/"),
        "another campaign, the break's ad": uri.replace("/c1/", "/c2/"),
        "the break's campaign, another ad": uri.replace("/spot-1/a1/", "/spot-2/b1/"),
    }
    for what, path in forged.items():
        for file in ("playlist.m3u8", "seg_00000.m4s"):
            response = await client.get(path_of(settings, file, path))
            assert response.status == 403, what
            assert (await response.json())["error"] == "ad_mismatch", what
    beacons = path_of(settings, "../ads/0/events", media_url)
    response = await client.post(beacons, json={"campaign_id": "c2", "events": ["impression"]})
    assert (response.status, (await response.json())["error"]) == (403, "ad_mismatch")
    await edge_app[ADS].recorder.flush()  # type: ignore[union-attr]
    day = datetime.fromtimestamp(clock(), UTC).date()
    assert sum(ad_store.inner.event_counts("c2", day).values()) == 0


async def test_a_break_with_no_ad_decided_serves_no_ad_and_takes_no_beacon(
    client: Client, settings: Settings, open_session: OpenSession
) -> None:
    media_url, uri = await _served_break(client, settings, open_session)
    # Break 1 was never asked for; break 2 does not exist in a 24 s track of 10 s slots.
    for n in (1, 2):
        other = uri.replace("/ads/0/", f"/ads/{n}/")
        response = await client.get(path_of(settings, "seg_00000.m4s", other))
        assert (response.status, (await response.json())["error"]) == (404, "ad_not_decided")
        beacons = path_of(settings, f"../ads/{n}/events", media_url)
        response = await client.post(beacons, json={"campaign_id": "c1", "events": ["complete"]})
        assert (response.status, (await response.json())["error"]) == (404, "ad_not_decided")
    # Break 1 asked for too soon after the pre-roll: decided, with no ad.
    assert await _asset_list(client, settings, media_url, 1) is None
    response = await client.get(
        path_of(settings, "playlist.m3u8", uri.replace("/ads/0/", "/ads/1/"))
    )
    assert (response.status, (await response.json())["error"]) == (404, "ad_not_decided")


async def test_probing_an_undecided_break_reads_the_store_once_per_ttl(
    client: Client,
    settings: Settings,
    open_session: OpenSession,
    ad_store: FaultyAdStore,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, uri = await _served_break(client, settings, open_session)
    reads: list[str] = []
    decisions_of = ad_store.decisions_of

    def counted(user_id: str, day: date) -> list[AdDecisionRecord]:
        reads.append(user_id)
        return decisions_of(user_id, day)

    monkeypatch.setattr(ad_store, "decisions_of", counted)
    probe = path_of(settings, "seg_00000.m4s", uri.replace("/ads/0/", "/ads/1/"))
    for _ in range(20):
        response = await client.get(probe)
        assert (response.status, (await response.json())["error"]) == (404, "ad_not_decided")
    first = len(reads)
    assert 0 < first <= 4  # one look, then once more after the record lag: today, yesterday
    clock.advance(UNDECIDED_TTL_S + 0.1)
    assert (await client.get(probe)).status == 404
    assert first < len(reads) <= 2 * first  # remembered for a while, not for good


async def test_another_session_cannot_use_a_break_decided_for_this_one(
    client: Client, settings: Settings, open_session: OpenSession
) -> None:
    _, uri = await _served_break(client, settings, open_session)
    other_media, _ = await _media(
        client, settings, await open_session("free", codecs=["mp4a.40.2"])
    )
    # The other session's token, this session's ad path: its break 0 was never decided.
    token_path = other_media.rsplit("/", 2)[0]
    stolen = token_path + uri[uri.index("/ads/0/") :]
    response = await client.get(path_of(settings, "seg_00000.m4s", stolen))
    assert (response.status, (await response.json())["error"]) == (404, "ad_not_decided")


async def test_a_decision_another_worker_made_is_read_from_the_store(
    client: Client,
    settings: Settings,
    open_session: OpenSession,
    edge_app: web.Application,
) -> None:
    _, uri = await _served_break(client, settings, open_session)
    service = edge_app[ADS]
    assert service is not None
    await service.recorder.flush()
    service._recent.clear()  # this worker forgets: as if another worker had decided
    response = await client.get(path_of(settings, "seg_00000.m4s", uri))
    assert response.status == 200


async def test_a_break_decided_here_plays_and_counts_through_a_whole_store_outage(
    client: Client,
    settings: Settings,
    open_session: OpenSession,
    edge_app: web.Application,
    ad_store: FaultyAdStore,
    clock: ManualClock,
) -> None:
    media_url, uri = await _served_break(client, settings, open_session)
    ad_store.reads_fail = ad_store.writes_fail = True  # the store goes down after the decision
    parsed = parse_media(await (await client.get(path_of(settings, uri))).text())
    for segment in parsed.segments:  # the decision is this worker's: no store read needed
        assert (await client.get(path_of(settings, segment.uri, uri))).status == 200
    beacons = path_of(settings, "../ads/0/events", media_url)
    response = await client.post(beacons, json={"campaign_id": "c1", "events": ["impression"]})
    assert response.status == 202
    recorder = edge_app[ADS].recorder  # type: ignore[union-attr]
    await recorder.flush()
    assert recorder.spooled_count() == 1 + 5 + 1  # the decision, 5 delivery events, the beacon
    ad_store.reads_fail = ad_store.writes_fail = False
    await recorder.flush()
    day = datetime.fromtimestamp(clock(), UTC).date()
    assert ad_store.inner.event_counts("c1", day) == {
        "impression": 1,
        "first_quartile": 1,
        "midpoint": 1,
        "third_quartile": 1,
        "complete": 1,
    }


async def test_an_ad_path_asked_of_a_worker_that_cannot_read_the_store_is_503(
    client: Client,
    settings: Settings,
    open_session: OpenSession,
    edge_app: web.Application,
    ad_store: FaultyAdStore,
) -> None:
    _, uri = await _served_break(client, settings, open_session)
    service = edge_app[ADS]
    assert service is not None
    service._recent.clear()  # decided by another worker, which this one cannot ask the store of
    ad_store.reads_fail = True
    response = await client.get(path_of(settings, "seg_00000.m4s", uri))
    assert (response.status, (await response.json())["error"]) == (503, "unavailable")
