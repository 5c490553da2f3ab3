"""The campaign admin API over HTTP: ad admin tokens only; create, update, pause, list."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from cdn_edge.admin_auth import ADS_SCOPE, LICENCES_SCOPE, issue_admin_token
from cdn_edge.ads.creatives import CURRENT_TTL_S
from cdn_edge.analytics_auth import issue_analytics_token
from cdn_edge.app import create_app
from cdn_edge.web.access_log import AccessLog
from drm import KeyRing
from streamer.ads.creative import current_ad_key
from streamer.ads.sqlite import SQLiteAdStore
from streamer.objects.memory import InMemoryObjectStore
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.settings import Settings
from streamer.token_secrets import TokenSecrets
from tests.edge.ad_builders import publish_ad
from tests.edge.builders import CountingReader
from tests.edge.conftest import Client, ManualClock, path_of

CAMPAIGN = {"campaign_id": "c1", "ad_id": "spot-1", "daily_goal": 100, "frequency_cap": 3}


@pytest.fixture
def ad_store(tmp_path: Path, store: InMemoryObjectStore) -> SQLiteAdStore:
    publish_ad(store)
    publish_ad(store, "spot-2", "b1")
    return SQLiteAdStore(tmp_path / "ads.sqlite3")


@pytest.fixture
def edge_app(
    settings: Settings,
    reader: CountingReader,
    session_store: SQLiteSessionStore,
    ring: KeyRing,
    clock: ManualClock,
    edge_secrets: TokenSecrets,
    hls_dir: Path,
    ad_store: SQLiteAdStore,
) -> web.Application:
    return create_app(
        dataclasses.replace(settings, ads=True, ad_slot_s=10, ad_break_every_s=0.0),
        reader,
        session_store,
        ring,
        clock=clock,
        secrets=edge_secrets,
        hls_dir=hls_dir,
        access_log=AccessLog(io.StringIO(), clock),
        ad_store=ad_store,
    )


@pytest.fixture
def admin(edge_secrets: TokenSecrets, clock: ManualClock) -> dict[str, str]:
    token = issue_admin_token(edge_secrets.platform_key, "ad-ops", 600, clock(), (ADS_SCOPE,))
    return {"Authorization": f"Bearer {token}"}


async def _json(response: Any, status: int) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def test_create_get_update_pause_resume_and_list(
    client: Client, admin: dict[str, str], ad_store: SQLiteAdStore
) -> None:
    created = await _json(await client.post("/v1/ads/campaigns", json=CAMPAIGN, headers=admin), 201)
    assert created == {
        **CAMPAIGN,
        "regions": [],
        "tiers": ["free"],
        "hours_utc": [0, 24],
        "active": True,
    }
    assert await _json(await client.get("/v1/ads/campaigns/c1", headers=admin), 200) == created
    again = await client.post("/v1/ads/campaigns", json=CAMPAIGN, headers=admin)
    assert (await _json(again, 409))["error"] == "campaign_exists"

    changes = {"ad_id": "spot-2", "regions": ["SE"], "hours_utc": [6, 22]}
    updated = await _json(
        await client.patch("/v1/ads/campaigns/c1", json=changes, headers=admin), 200
    )
    assert (updated["ad_id"], updated["regions"], updated["hours_utc"]) == (
        "spot-2",
        ["SE"],
        [6, 22],
    )
    assert updated["daily_goal"] == 100  # untouched fields stay

    paused = await _json(await client.post("/v1/ads/campaigns/c1/pause", headers=admin), 200)
    assert paused["active"] is False
    assert [c.active for c in ad_store.campaigns()] == [False]  # in the store, not only the answer
    resumed = await _json(await client.post("/v1/ads/campaigns/c1/resume", headers=admin), 200)
    assert resumed["active"] is True

    await _json(
        await client.post(
            "/v1/ads/campaigns", json={**CAMPAIGN, "campaign_id": "c0"}, headers=admin
        ),
        201,
    )
    listing = await _json(await client.get("/v1/ads/campaigns", headers=admin), 200)
    assert [c["campaign_id"] for c in listing["campaigns"]] == ["c0", "c1"]


@pytest.mark.parametrize(
    ("body", "code", "names"),
    [
        ({**CAMPAIGN, "daily_goal": 0}, "invalid_campaign", "daily_goal"),
        ({**CAMPAIGN, "regions": ["sweden"]}, "invalid_campaign", "regions"),
        ({**CAMPAIGN, "hours_utc": [3, 3]}, "invalid_campaign", "hours_utc"),
        ({**CAMPAIGN, "budget": 5}, "invalid_campaign", "budget"),
        ({**CAMPAIGN, "ad_id": "never-ingested"}, "invalid_field", "never-ingested"),
        ([CAMPAIGN], "invalid_field", "JSON object"),
    ],
)
async def test_a_bad_campaign_is_refused_with_what_is_wrong(
    client: Client, admin: dict[str, str], body: Any, code: str, names: str, ad_store: SQLiteAdStore
) -> None:
    doc = await _json(await client.post("/v1/ads/campaigns", json=body, headers=admin), 400)
    assert doc["error"] == code and names in doc["message"]
    assert ad_store.campaigns() == []


async def test_updates_cannot_rename_and_unknown_campaigns_are_404(
    client: Client, admin: dict[str, str]
) -> None:
    await _json(await client.post("/v1/ads/campaigns", json=CAMPAIGN, headers=admin), 201)
    rename = await client.patch("/v1/ads/campaigns/c1", json={"campaign_id": "c9"}, headers=admin)
    assert (await _json(rename, 400))["error"] == "invalid_field"
    for method, path in (
        ("GET", "/v1/ads/campaigns/nope"),
        ("PATCH", "/v1/ads/campaigns/nope"),
        ("POST", "/v1/ads/campaigns/nope/pause"),
    ):
        response = await client.request(method, path, json={}, headers=admin)
        assert (await _json(response, 404))["error"] == "campaign_not_found"


async def test_only_an_ad_admin_token_manages_campaigns(
    client: Client,
    edge_secrets: TokenSecrets,
    clock: ManualClock,
    listener_token: Any,
    ad_store: SQLiteAdStore,
) -> None:
    analytics = issue_analytics_token(
        edge_secrets.platform_key, "ops", 600, clock(), all_tracks=True
    )
    expired = issue_admin_token(
        edge_secrets.platform_key, "ad-ops", 60, clock() - 3600, (ADS_SCOPE,)
    )
    forged = issue_admin_token(b"another-secret-" + b"y" * 32, "ad-ops", 600, clock(), (ADS_SCOPE,))
    for authorization in (
        None,
        f"Bearer {listener_token('premium')}",
        f"Bearer {analytics}",
        f"Bearer {expired}",
        f"Bearer {forged}",
    ):
        headers = {"Authorization": authorization} if authorization else {}
        for method, path in (("GET", "/v1/ads/campaigns"), ("POST", "/v1/ads/campaigns")):
            response = await client.request(method, path, json=CAMPAIGN, headers=headers)
            assert response.status == 401, (authorization, await response.text())
    licences_only = issue_admin_token(edge_secrets.platform_key, "ops", 600, clock())
    response = await client.get("/v1/ads/campaigns", headers=_bearer(licences_only))
    assert response.status == 403  # an operator, but not one who manages campaigns
    both = issue_admin_token(
        edge_secrets.platform_key, "ops", 600, clock(), (LICENCES_SCOPE, ADS_SCOPE)
    )
    assert (await client.get("/v1/ads/campaigns", headers=_bearer(both))).status == 200
    assert ad_store.campaigns() == []


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_paused_campaign_stops_serving_at_once_on_this_worker(
    client: Client, admin: dict[str, str], settings: Settings, open_session: Any
) -> None:
    await _json(await client.post("/v1/ads/campaigns", json=CAMPAIGN, headers=admin), 201)

    async def pre_roll() -> list[Any]:
        session = await open_session("free", codecs=["mp4a.40.2"])
        media = session["playlist_url"].replace(
            "main.m3u8", f"{session['variants'][0]}/playlist.m3u8"
        )
        response = await client.get(path_of(settings, "../ads/breaks/0.json", media))
        return [] if response.status == 204 else list((await _json(response, 200))["ASSETS"])

    assert len(await pre_roll()) == 1
    assert len(await pre_roll()) == 1  # no interval between breaks here: served again
    await _json(await client.post("/v1/ads/campaigns/c1/pause", headers=admin), 200)
    assert await pre_roll() == []


async def test_a_new_creative_must_be_published_but_pausing_needs_none(
    client: Client, admin: dict[str, str], store: InMemoryObjectStore, clock: ManualClock
) -> None:
    await _json(await client.post("/v1/ads/campaigns", json=CAMPAIGN, headers=admin), 201)
    to_missing = await client.patch(
        "/v1/ads/campaigns/c1", json={"ad_id": "never-ingested"}, headers=admin
    )
    assert (await _json(to_missing, 400))["error"] == "invalid_field"
    store.delete(current_ad_key("spot-1"))  # the creative is withdrawn
    clock.advance(CURRENT_TTL_S)  # and the edge's cache of it has expired
    paused = await _json(await client.post("/v1/ads/campaigns/c1/pause", headers=admin), 200)
    assert paused["active"] is False
