"""GET /v1/steer/{token} and steered playlists over HTTP, with real background probes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode, urljoin

import m3u8

from cdn_edge.state import METRICS, PATHWAY_HEALTH
from manifests import lint_multivariant, parse_multivariant
from streamer.settings import Settings
from tests.edge.conftest import Client, ManualClock, path_of
from tests.steering.conftest import EDGE_URL, STEERING_TTL_S, FakeCdns

OpenSession = Callable[..., Awaitable[dict[str, Any]]]
IDS = {"edge", "cdn-a", "cdn-b"}


def steering_url(doc: dict[str, Any]) -> str:
    token = doc["playlist_url"].split("/")[-2]
    return f"{EDGE_URL}/v1/steer/{token}"


async def steer(
    client: Client, url: str, pathway: str | None = None, throughput: int | None = None
) -> dict[str, Any]:
    """One reload as hls.js sends it: the URL with _HLS_pathway and _HLS_throughput set."""
    params = {}
    if pathway is not None:
        params["_HLS_pathway"] = pathway
    if throughput is not None:
        params["_HLS_throughput"] = str(throughput)
    full = url + ("?" + urlencode(params) if params else "")
    response = await client.get(full[len(EDGE_URL) :])
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    doc: dict[str, Any] = await response.json()
    return doc


async def test_multivariant_carries_steering_and_every_pathway(
    client: Client, open_session: OpenSession, settings: Settings, cdns: FakeCdns
) -> None:
    doc = await open_session("free")  # a listener in SE
    response = await client.get(path_of(settings, doc["playlist_url"]))
    text = await response.text()
    parsed = parse_multivariant(text)
    assert lint_multivariant(parsed) == []
    assert parsed.content_steering is not None
    assert parsed.content_steering.server_uri == steering_url(doc)
    assert parsed.content_steering.pathway_id == "cdn-a"  # the one serving SE
    token = doc["playlist_url"].split("/")[-2]
    bases = {"edge": EDGE_URL, "cdn-a": cdns.base("a"), "cdn-b": cdns.base("b")}
    assert {(v.pathway_id, v.uri) for v in parsed.variants} == {
        (p, f"{bases[p]}/v1/s/{token}/{name}/playlist.m3u8")
        for p in IDS
        for name in doc["variants"]
    }
    assert m3u8.loads(text).content_steering.pathway_id == "cdn-a"


async def test_steering_manifest_per_spec(
    client: Client, open_session: OpenSession, cdns: FakeCdns
) -> None:
    doc = await open_session("free")
    url = steering_url(doc)
    manifest = await steer(client, url)
    assert set(manifest) == {"VERSION", "TTL", "RELOAD-URI", "PATHWAY-PRIORITY"}
    assert manifest["VERSION"] == 1 and type(manifest["VERSION"]) is int
    assert manifest["TTL"] == STEERING_TTL_S and type(manifest["TTL"]) is int
    assert manifest["RELOAD-URI"] == url  # absolute; hls.js adds its parameters again
    sent = f"{url}?_HLS_pathway=cdn-a&_HLS_throughput=812000"
    assert urljoin(sent, manifest["RELOAD-URI"]) == url  # as hls.js resolves it
    assert isinstance(manifest["PATHWAY-PRIORITY"], list)
    assert set(manifest["PATHWAY-PRIORITY"]) == IDS
    assert manifest["PATHWAY-PRIORITY"][0] == "cdn-a"
    # The same session gets the same order on every reload.
    assert (await steer(client, url, "cdn-a", 812_000))["PATHWAY-PRIORITY"] == (
        manifest["PATHWAY-PRIORITY"]
    )


async def test_region_decides_the_first_pathway(
    client: Client, listener_token: Callable[..., str], settings: Settings
) -> None:
    response = await client.post(
        "/v1/sessions",
        json={"track_id": "trk1", "device": {"codecs": ["mp4a.40.2"]}},
        headers={"Authorization": f"Bearer {listener_token('free', region='US')}"},
    )
    doc = await response.json()
    priority = (await steer(client, steering_url(doc)))["PATHWAY-PRIORITY"]
    assert priority[-1] == "cdn-a"  # meant for the Nordics
    assert set(priority[:2]) == {"edge", "cdn-b"}  # both serve everywhere
    main = parse_multivariant(
        await (await client.get(path_of(settings, doc["playlist_url"]))).text()
    )
    assert main.content_steering is not None
    assert main.content_steering.pathway_id == priority[0]


async def test_reports_feed_metrics_and_the_next_sessions_start(
    client: Client, open_session: OpenSession
) -> None:
    first = await open_session("free")
    assert first["start_variant"]["rendition"] == "opus_160"  # nothing measured yet
    url = steering_url(first)
    # The test ladder's BANDWIDTH is a few kbit/s; a 5 kbit/s listener fits none of it.
    for _ in range(3):
        await steer(client, url, "cdn-b", 5_000)
    await steer(client, url, "cdn-b", 500_000)  # hls.js's unmeasured default: ignored
    await steer(client, url, "nonsense", 9_000_000)
    second = await open_session("free")
    assert second["start_variant"]["rendition"] == "opus_32"  # the lowest of the codec
    assert second["variants"][1:] == ["opus_160", "opus_96", "aac_160", "aac_96"]

    metrics = client.app[METRICS]
    assert metrics.steering_requests.labels("cdn-b")._value.get() == 4
    assert metrics.steering_requests.labels("none")._value.get() == 1
    exposition = metrics.exposition().decode()
    assert 'edge_pathway_throughput_kbps_count{pathway="cdn-b"} 3.0' in exposition
    assert 'edge_pathway_throughput_kbps_sum{pathway="cdn-b"} 15.0' in exposition
    assert 'edge_pathway_healthy{pathway="cdn-a"} 1.0' in exposition
    assert 'edge_steering_requests_total{pathway="cdn-b"} 4.0' in exposition


async def test_ended_session_stops_steering_forged_is_refused(
    client: Client, open_session: OpenSession, clock: ManualClock
) -> None:
    doc = await open_session("free")
    url = steering_url(doc)
    forged = await client.get(url[len(EDGE_URL) :] + "x")
    assert forged.status == 401
    clock.advance(doc["expires_in_s"])
    gone = await client.get(url[len(EDGE_URL) :])
    assert gone.status == 410  # hls.js stops reloading on 410
    assert (await gone.json())["error"] == "steering_gone"
    assert gone.headers["Access-Control-Allow-Origin"] == "*"


async def wait_for(condition: Callable[[], Awaitable[bool]], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_probes_move_a_failing_cdn_last_and_back(
    client: Client, open_session: OpenSession, settings: Settings, cdns: FakeCdns
) -> None:
    doc = await open_session("free")
    url = steering_url(doc)

    async def order() -> list[str]:
        return list((await steer(client, url, "cdn-a"))["PATHWAY-PRIORITY"])

    assert (await order())[0] == "cdn-a"
    cdns.status["a"] = 503

    async def cdn_a_last() -> bool:
        return (await order())[-1] == "cdn-a"

    await wait_for(cdn_a_last)
    board = client.app[PATHWAY_HEALTH]
    assert board.state("cdn-a").reason == "2 health probes failed in a row"
    exposition = client.app[METRICS].exposition().decode()
    assert 'edge_pathway_healthy{pathway="cdn-a"} 0.0' in exposition
    # New playlists start elsewhere too.
    main = parse_multivariant(
        await (await client.get(path_of(settings, doc["playlist_url"]))).text()
    )
    assert main.content_steering is not None
    assert main.content_steering.pathway_id != "cdn-a"

    cdns.status["a"] = 200

    async def cdn_a_first() -> bool:
        return (await order())[0] == "cdn-a"

    await wait_for(cdn_a_first)
    assert cdns.probes["b"] > 0
