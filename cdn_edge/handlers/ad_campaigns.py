"""The campaign admin API: ad operations create, update, pause and list campaigns.

GET   /v1/ads/campaigns                       every campaign, in id order
POST  /v1/ads/campaigns                       create one (a campaign document); 409 if it exists
GET   /v1/ads/campaigns/{campaign_id}         one
PATCH /v1/ads/campaigns/{campaign_id}         change some fields (not the id)
POST  /v1/ads/campaigns/{campaign_id}/pause   stop serving it (active: false)
POST  /v1/ads/campaigns/{campaign_id}/resume  serve it again

Every route needs an admin token with the ads:admin scope (cdn_edge.admin_auth). A
campaign's creative must be published (`streamer ingest --kind ad`) when the campaign is
created or names another one: a campaign without one would only skip breaks. This worker's
decisions see a change at once; other workers' within their campaign cache's CAMPAIGNS_TTL_S
(cdn_edge.ads.service).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from cdn_edge.errors import InvalidField, NotFound
from cdn_edge.policy.names import check_name
from cdn_edge.state import AD_STORE, ADS, ADS_ADMIN, BLOCKING, log_fields
from cdn_edge.web.request_body import read_bounded
from streamer.ads.campaigns import Campaign, campaign_doc, campaign_from_doc
from streamer.ads.errors import AdNotFound, CampaignExists, CampaignNotFound
from streamer.ads.port import AdStore

NO_STORE = {"Cache-Control": "no-store"}
MAX_CAMPAIGN_BODY_BYTES = 16 * 1024  # a campaign is a few hundred bytes; 250 regions fit


def _admin(request: web.Request) -> AdStore:
    """The ad store, once the request's ad admin token is verified."""
    operator = request.app[ADS_ADMIN].verify_header(request.headers.get("Authorization"))
    log_fields(request).update(ad_operator=operator)
    store = request.app[AD_STORE]
    if store is None:
        raise NotFound("ads are off on this edge (STREAMER_ADS=false)")
    return store


async def _body(request: web.Request) -> dict[str, Any]:
    body = await read_bounded(request, MAX_CAMPAIGN_BODY_BYTES, "a campaign is a small object")
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise InvalidField("body", f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidField("body", "expected a campaign as a JSON object")
    return doc


async def _campaign(request: web.Request, store: AdStore, campaign_id: str) -> Campaign:
    for campaign in await request.app[BLOCKING](store.campaigns):
        if campaign.campaign_id == campaign_id:
            return campaign
    raise CampaignNotFound(campaign_id)


async def _store(
    request: web.Request, store: AdStore, campaign: Campaign, status: int, *, new_ad: bool
) -> web.Response:
    """Store `campaign`; `new_ad`: it names a creative it did not before, which must exist
    (pausing a campaign whose creative was withdrawn must still work)."""
    service = request.app[ADS]
    if service is not None and new_ad:
        try:
            await service.creatives.current(campaign.ad_id)
        except AdNotFound as exc:
            raise InvalidField(
                "ad_id", f"{exc}; ingest it with `streamer ingest --kind ad`"
            ) from exc
    await request.app[BLOCKING](store.put_campaign, campaign)
    if service is not None:
        service.forget_campaigns()
    log_fields(request).update(ad_campaign=campaign.campaign_id)
    return web.json_response(campaign_doc(campaign), status=status, headers=NO_STORE)


async def list_campaigns(request: web.Request) -> web.Response:
    store = _admin(request)
    campaigns = await request.app[BLOCKING](store.campaigns)
    return web.json_response({"campaigns": [campaign_doc(c) for c in campaigns]}, headers=NO_STORE)


async def create_campaign(request: web.Request) -> web.Response:
    store = _admin(request)
    campaign = campaign_from_doc(await _body(request))
    try:
        await _campaign(request, store, campaign.campaign_id)
    except CampaignNotFound:
        return await _store(request, store, campaign, 201, new_ad=True)
    raise CampaignExists(campaign.campaign_id)


async def get_campaign(request: web.Request) -> web.Response:
    store = _admin(request)
    campaign_id = check_name("campaign id", request.match_info["campaign_id"])
    campaign = await _campaign(request, store, campaign_id)
    return web.json_response(campaign_doc(campaign), headers=NO_STORE)


async def update_campaign(request: web.Request) -> web.Response:
    store = _admin(request)
    campaign_id = check_name("campaign id", request.match_info["campaign_id"])
    changes = await _body(request)
    if changes.get("campaign_id", campaign_id) != campaign_id:
        raise InvalidField("campaign_id", "a campaign's id cannot change; create another")
    current = campaign_doc(await _campaign(request, store, campaign_id))
    updated = campaign_from_doc({**current, **changes})
    new_ad = updated.ad_id != current["ad_id"]
    return await _store(request, store, updated, 200, new_ad=new_ad)


async def _set_active(request: web.Request, active: bool) -> web.Response:
    store = _admin(request)
    campaign_id = check_name("campaign id", request.match_info["campaign_id"])
    current = campaign_doc(await _campaign(request, store, campaign_id))
    campaign = campaign_from_doc({**current, "active": active})
    return await _store(request, store, campaign, 200, new_ad=False)


async def pause_campaign(request: web.Request) -> web.Response:
    return await _set_active(request, False)


async def resume_campaign(request: web.Request) -> web.Response:
    return await _set_active(request, True)
