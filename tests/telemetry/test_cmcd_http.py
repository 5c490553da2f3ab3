"""CMCD on real playback requests and CMSD on segment responses, over HTTP."""

from __future__ import annotations

import pytest
from aiohttp import web

from cdn_edge.state import CAPTURE, METRICS, TELEMETRY
from cdn_edge.telemetry.capture import TelemetryCapture
from tests.edge.conftest import Client, ManualClock
from tests.telemetry.cmsd_headers import parse_cmsd_dynamic, parse_cmsd_static
from tests.telemetry.conftest import FlakyStore, OpenPlayback, drain
from tests.telemetry.test_cmcd import HLSJS_QUERY


@pytest.fixture
def congestion() -> dict[str, int | None]:
    """The edge's congestion ceiling, which a test may set (None: not congested)."""
    return {"kbps": None}


@pytest.fixture
def edge_app(
    edge_app: web.Application, congestion: dict[str, int | None], clock: ManualClock
) -> web.Application:
    edge_app[CAPTURE] = TelemetryCapture(
        edge_app[TELEMETRY],
        edge_app[METRICS].telemetry,
        clock,
        "edge-test",
        congestion=lambda: congestion["kbps"],
    )
    return edge_app


def with_cmcd(path: str, query: str = HLSJS_QUERY) -> str:
    # hls.js appends CMCD to whatever query the URL has (here the signed token).
    return f"{path}{'&' if '?' in path else '?'}CMCD={query}"


async def test_cmcd_query_leaves_tokens_alone_and_lands_per_route(
    client: Client,
    open_playback: OpenPlayback,
    session_store: FlakyStore,
    edge_app: web.Application,
    clock: ManualClock,
) -> None:
    pb = await open_playback()
    main = pb.doc["playlist_url"].split("/v1/", 1)[1]
    paths = ["/v1/" + main, pb.playlist, pb.key, pb.init, pb.segments[0]]
    for path in paths:
        response = await client.get(with_cmcd(path))
        assert response.status == 200, (path, await response.text())
    await drain(edge_app, clock)
    samples = session_store.inner.session_telemetry(pb.doc["session_id"]).cmcd
    # One sample a request (the manual clock gives them all the same millisecond).
    assert sorted((s.route, s.object, s.status) for s in samples) == [
        ("key", "v1-free-0", 200),
        ("playlist", "aac_96", 200),
        ("playlist", "main", 200),
        ("segment", "aac_96/init.mp4", 200),
        ("segment", "aac_96/seg_00000.m4s", 200),
    ]
    for sample in samples:
        assert sample.keys["mtp"] == 48100
        assert sample.keys["sid"] == "6e2fb550-c457-11e9-bb97-0800200c9a66"
        assert sample.keys["bs"] is True
    stored = repr(samples)
    assert pb.token not in stored and "eyJ" not in stored  # no token is kept
    registry = edge_app[METRICS].registry
    assert registry.get_sample_value("edge_cmcd_requests_total", {"route": "playlist"}) == 2
    assert registry.get_sample_value("edge_cmcd_buffer_starvation_total", {"route": "key"}) == 1


async def test_cmcd_headers_mode(
    client: Client,
    open_playback: OpenPlayback,
    session_store: FlakyStore,
    edge_app: web.Application,
    clock: ManualClock,
) -> None:
    pb = await open_playback()
    headers = {
        "CMCD-Object": "br=96,d=6000,ot=a,tb=160",
        "CMCD-Request": 'bl=4000,mtp=2200,nor="seg_00002.m4s",su',
        "CMCD-Session": 'cid="trk1",sf=h,sid="p-1",st=v',
        "CMCD-Status": "rtp=500",
    }
    assert (await client.get(pb.segments[1], headers=headers)).status == 200
    await drain(edge_app, clock)
    [sample] = session_store.inner.session_telemetry(pb.doc["session_id"]).cmcd
    assert sample.keys == {
        "br": 96,
        "d": 6000,
        "ot": "a",
        "tb": 160,
        "bl": 4000,
        "mtp": 2200,
        "nor": "seg_00002.m4s",
        "su": True,
        "cid": "trk1",
        "sf": "h",
        "sid": "p-1",
        "st": "v",
        "rtp": 500,
    }


async def test_malformed_cmcd_is_counted_and_playback_goes_on(
    client: Client,
    open_playback: OpenPlayback,
    session_store: FlakyStore,
    edge_app: web.Application,
    clock: ManualClock,
) -> None:
    pb = await open_playback()
    for query in ("br%3D3%2C%2C", "%22%22%22", "BR%3D1", "br%3D-1%2Cfoo%3D2"):
        assert (await client.get(with_cmcd(pb.segments[0], query))).status == 200
    response = await client.get(pb.segments[0], headers={"CMCD-Object": "br=(("})
    assert response.status == 200
    await drain(edge_app, clock)
    # Nothing parsed from the malformed ones, so nothing is stored for them.
    assert session_store.inner.session_telemetry(pb.doc["session_id"]).cmcd == ()
    registry = edge_app[METRICS].registry
    assert registry.get_sample_value("edge_cmcd_malformed_total", {"reason": "syntax"}) == 4
    assert registry.get_sample_value("edge_cmcd_malformed_total", {"reason": "bad_value"}) == 1
    assert registry.get_sample_value("edge_cmcd_malformed_total", {"reason": "unknown_key"}) == 1


async def test_cmcd_of_a_refused_request_is_counted_not_kept(
    client: Client,
    open_playback: OpenPlayback,
    session_store: FlakyStore,
    edge_app: web.Application,
    clock: ManualClock,
) -> None:
    pb = await open_playback()
    forged = pb.segments[0].replace(pb.token, pb.token[:-4] + "AAAA")
    assert forged != pb.segments[0]
    assert (await client.get(with_cmcd(forged))).status == 401
    await drain(edge_app, clock)
    assert session_store.inner.session_telemetry(pb.doc["session_id"]).cmcd == ()
    registry = edge_app[METRICS].registry
    assert registry.get_sample_value("edge_cmcd_requests_total", {"route": "segment"}) == 1


async def test_cmsd_on_a_free_session_caps_at_160(
    client: Client, open_playback: OpenPlayback
) -> None:
    pb = await open_playback("free")
    response = await client.get(pb.segments[2])
    assert response.status == 200
    static = parse_cmsd_static(response.headers["CMSD-Static"])
    assert (static.ot, static.sf, static.st, static.d, static.br) == ("a", "h", "v", 6000, 96)
    [dynamic] = parse_cmsd_dynamic(response.headers["CMSD-Dynamic"])
    assert dynamic.mb == 160
    assert dynamic.server and not dynamic.du
    assert dynamic.rd is not None and dynamic.rd >= 0
    assert dynamic.etp is not None and dynamic.etp > 0  # the kernel's view of loopback
    init = await client.get(pb.init)
    assert parse_cmsd_static(init.headers["CMSD-Static"]).ot == "i"
    assert parse_cmsd_static(init.headers["CMSD-Static"]).d is None


async def test_cmsd_on_a_premium_session_suggests_no_cap(
    client: Client, open_playback: OpenPlayback
) -> None:
    pb = await open_playback("premium", rendition="aac_256")
    response = await client.get(pb.segments[0], headers={"Range": "bytes=0-99"})
    assert response.status == 206
    [dynamic] = parse_cmsd_dynamic(response.headers["CMSD-Dynamic"])
    assert dynamic.mb is None
    assert parse_cmsd_static(response.headers["CMSD-Static"]).br == 256


async def test_congestion_lowers_mb_and_signals_duress(
    client: Client, open_playback: OpenPlayback, congestion: dict[str, int | None]
) -> None:
    premium = await open_playback("premium", rendition="aac_256")
    congestion["kbps"] = 96
    response = await client.get(premium.segments[0])
    assert response.status == 200
    [dynamic] = parse_cmsd_dynamic(response.headers["CMSD-Dynamic"])
    assert (dynamic.server, dynamic.mb, dynamic.du) == ("edge-test", 96, True)
