"""Ad breaks of free sessions, under the session's path (cdn_edge.ads).

GET  /v1/s/{token}/ads/breaks/{n}.json            the break's asset list (HLS interstitials):
                                                  {"ASSETS": [{"URI", "DURATION"}]}, or 204
GET  /v1/s/{token}/ads/{n}/{campaign}/{ad}/{version}/{rendition}/playlist.m3u8   the ad's media
GET  /v1/s/{token}/ads/{n}/{campaign}/{ad}/{version}/{rendition}/{file}          init, segments
POST /v1/s/{token}/ads/{n}/events                 player beacons: {"campaign_id", "events": [...]}
GET  /v1/ads/campaigns/{campaign_id}/report?day=  impressions and quartiles (analytics token)

Segment deliveries count too: the first segment is the impression, the segment that crosses a
quarter of the ad its quartile, the last "complete". Both sources write the same
(decision, event) key, so each counts once. Ad segments are never recorded as track segment
deliveries, so an ad never counts toward a track's play.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from aiohttp import web

from cdn_edge.ads.interstitials import ADS_DIR, break_starts
from cdn_edge.errors import (
    AdMismatch,
    AdNotDecided,
    BadRequest,
    Forbidden,
    InvalidField,
    NotFound,
    Unavailable,
)
from cdn_edge.handlers.playlists import PLAYLIST_CONTENT_TYPE
from cdn_edge.handlers.royalty_plays import parse_day
from cdn_edge.playback.catalog_cache import content_type_for
from cdn_edge.playback.playlist_builder import session_path
from cdn_edge.playback.tokens import SessionClaims
from cdn_edge.policy.names import check_name
from cdn_edge.state import (
    AD_STORE,
    ADS,
    ANALYTICS,
    BLOCKING,
    CATALOG,
    CLOCK,
    METRICS,
    READER,
    SETTINGS,
    TOKENS,
    log_fields,
)
from cdn_edge.web.request_body import read_bounded
from manifests import Map, MediaPlaylist, Segment, render_media
from streamer.ads.creative import AdCreative, ad_prefix
from streamer.ads.errors import InvalidAdEvent
from streamer.ads.port import AD_EVENTS, AdDecisionRecord, AdEvent, AdEventName, decision_id_for
from streamer.catalog import RenditionRecord
from streamer.errors import StorageError
from streamer.objects.port import IMMUTABLE

NO_STORE = {"Cache-Control": "no-store"}
MAX_BREAK_INDEX = 10_000  # a 4-hour master at one break a second is fewer
MAX_EVENT_BODY_BYTES = 2048
_BREAK_FILE = re.compile(r"(0|[1-9][0-9]{0,4})\.json")
_QUARTILES: tuple[tuple[float, AdEventName], ...] = (
    (0.25, "first_quartile"),
    (0.5, "midpoint"),
    (0.75, "third_quartile"),
)


def _session(request: web.Request) -> SessionClaims:
    claims = request.app[TOKENS].verify_session(
        request.match_info["token"], int(request.app[CLOCK]())
    )
    log_fields(request).update(session_id=claims.session_id, track_id=claims.track_id)
    return claims


def _break_index(text: str) -> int:
    if not text.isdigit() or int(text) > MAX_BREAK_INDEX or (len(text) > 1 and text[0] == "0"):
        raise BadRequest(f"ad break {text[:12]!r} is not a break number 0-{MAX_BREAK_INDEX}")
    return int(text)


def choose_rendition(creative: AdCreative, session: SessionClaims) -> RenditionRecord:
    """The creative's rendition for this session: the first of the session's variants the
    ad has (same codec and bit rate as the track), else the ad's first of the same codec."""
    names = {r.name: r for r in creative.renditions}
    for variant in session.variants:
        if variant in names:
            return names[variant]
    codec = session.variants[0].split("_")[0] if session.variants else ""
    same = [r for r in creative.renditions if r.codec == codec]
    return (same or list(creative.renditions))[0]


async def asset_list(request: web.Request) -> web.Response:
    session = _session(request)
    match = _BREAK_FILE.fullmatch(request.match_info["name"])
    if match is None:
        raise NotFound(f"no ad break {request.match_info['name'][:20]!r}")
    index = int(match.group(1))
    app = request.app
    track = await app[CATALOG].version(session.track_id, session.version)
    rendition_name = session.variants[0] if session.variants else ""
    if rendition_name not in track.renditions:
        raise NotFound(f"the session's rendition {rendition_name!r} is not in its track")
    durations = tuple(s.duration_s for s in track.renditions[rendition_name].segments)
    starts = break_starts(durations, app[SETTINGS].ad_slot_s)
    if index >= len(starts):
        raise NotFound(f"track {session.track_id} has {len(starts)} ad breaks, not {index + 1}")
    service = app[ADS]
    served = await service.decide(session, index, starts) if service is not None else None
    if served is None:
        # No ad in this break: 204, not an empty list. hls.js 1.7 keeps a break whose list is
        # empty in its schedule, and a level switch after the primary buffered up to it stalls
        # playback; a list it cannot load drops the break (docs/decisions/0011).
        return web.Response(status=204, headers=NO_STORE)
    creative, record = served.creative, served.record
    rendition = choose_rendition(creative, session)
    base = request.app[SETTINGS].base_url
    uri = (
        f"{base}{session_path(request.match_info['token'])}/{ADS_DIR}/{index}/"
        f"{record.campaign_id}/{creative.ad_id}/{creative.version}/{rendition.name}/playlist.m3u8"
    )
    duration = round(sum(s.duration_s for s in rendition.segments), 3)
    log_fields(request).update(ad_campaign=record.campaign_id, ad_break=index)
    return web.json_response(
        {
            "ASSETS": [{"URI": uri, "DURATION": duration}],
            # Ours, for the player's beacons (cdn_edge/web/player.html).
            "X-STREAMER-AD": {"campaign_id": record.campaign_id, "break": index},
        },
        headers=NO_STORE,
    )


async def break_decision(
    request: web.Request, session: SessionClaims, index: int, campaign: str, ad_id: str | None
) -> AdDecisionRecord:
    """The break's recorded decision, which must have chosen `campaign` (and `ad_id`): a
    listener cannot attribute deliveries or beacons to another campaign, even in their own
    session. AdNotDecided when the break got no ad, AdMismatch when it got another."""
    service = request.app[ADS]
    if service is None:
        raise NotFound("ads are off on this edge")
    try:
        record = await service.recorded(session, index)
    except StorageError as exc:
        raise Unavailable(f"the ad store did not answer for break {index}: {exc}") from exc
    if record is None or not record.served:
        raise AdNotDecided(f"break {index} of this session has no ad decided")
    if record.campaign_id != campaign:
        raise AdMismatch(
            f"break {index} of this session was decided for another campaign than {campaign!r}"
        )
    if ad_id is not None and record.ad_id != ad_id:
        raise AdMismatch(f"break {index} of this session was decided for another ad than {ad_id!r}")
    log_fields(request).update(ad_campaign=campaign, ad_break=index)
    return record


async def _creative_rendition(
    request: web.Request, session: SessionClaims
) -> tuple[AdCreative, RenditionRecord, int]:
    info = request.match_info
    index = _break_index(info["n"])
    campaign = check_name("campaign id", info["campaign"])
    ad_id = check_name("ad id", info["ad_id"])
    version = check_name("version", info["version"])
    name = check_name("rendition", info["rendition"])
    service = request.app[ADS]
    if service is None:
        raise NotFound("ads are off on this edge")
    await break_decision(request, session, index, campaign, ad_id)
    creative = await service.creatives.version(ad_id, version)
    try:
        return creative, creative.rendition(name), index
    except KeyError:
        raise NotFound(f"ad {ad_id} has no rendition {name!r}") from None


async def ad_playlist(request: web.Request) -> web.Response:
    session = _session(request)
    _, rendition, _ = await _creative_rendition(request, session)
    prefix = f"{rendition.name}/"
    segments = tuple(
        Segment(
            s.key.removeprefix(prefix),
            s.duration_s,
            map=Map(rendition.init_key.removeprefix(prefix)) if i == 0 else None,
        )
        for i, s in enumerate(rendition.segments)
    )
    text = render_media(MediaPlaylist(rendition.target_duration_s, segments))
    return web.Response(
        text=text,
        content_type=PLAYLIST_CONTENT_TYPE,
        headers={"Cache-Control": "private, max-age=60"},
    )


def delivery_events(rendition: RenditionRecord, segment_index: int) -> tuple[AdEventName, ...]:
    """What delivering this segment of the ad says was heard (IAB: start, quartiles, end)."""
    total = sum(s.duration_s for s in rendition.segments)
    start = sum(s.duration_s for s in rendition.segments[:segment_index])
    end = start + rendition.segments[segment_index].duration_s
    events: list[AdEventName] = ["impression"] if segment_index == 0 else []
    events += [name for share, name in _QUARTILES if start < share * total <= end]
    if segment_index == len(rendition.segments) - 1:
        events.append("complete")
    return tuple(events)


async def ad_object(request: web.Request) -> web.Response:
    session = _session(request)
    creative, rendition, index = await _creative_rendition(request, session)
    file = check_name("file", request.match_info["file"])
    key = f"{rendition.name}/{file}"
    if key == rendition.init_key:
        size, sha256, segment_index = rendition.init_size, rendition.init_sha256, None
    else:
        found = [i for i, s in enumerate(rendition.segments) if s.key == key]
        if not found:
            raise NotFound(f"ad {creative.ad_id} has no {key!r}")
        segment_index = found[0]
        segment = rendition.segments[segment_index]
        size, sha256 = segment.size, segment.sha256
    app = request.app
    data = await app[BLOCKING](
        app[READER].get, f"{ad_prefix(creative.ad_id, creative.version)}/{key}"
    )
    if len(data) != size:
        raise NotFound(f"ad object {key} does not match its record")
    service = app[ADS]
    if segment_index is not None and service is not None:
        now = app[CLOCK]()
        decision_id = decision_id_for(session.session_id, index)
        for event in delivery_events(rendition, segment_index):
            service.recorder.event(
                AdEvent(decision_id, request.match_info["campaign"], event, now, "delivery")
            )
            app[METRICS].ads.events.labels(event, "delivery").inc()
    headers = {"Cache-Control": IMMUTABLE, "ETag": f'"{sha256}"'}
    return web.Response(body=data, content_type=content_type_for(file), headers=headers)


async def ad_events(request: web.Request) -> web.Response:
    session = _session(request)
    index = _break_index(request.match_info["n"])
    body = await read_bounded(request, MAX_EVENT_BODY_BYTES, "ad beacons are a small JSON object")
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise InvalidField("body", f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidField("body", 'expected {"campaign_id": ..., "events": [...]}')
    campaign = doc.get("campaign_id")
    events = doc.get("events")
    if not isinstance(campaign, str):
        raise InvalidField("campaign_id", "expected the campaign id of the break's asset list")
    check_name("campaign id", campaign)
    if not isinstance(events, list) or not 1 <= len(events) <= len(AD_EVENTS):
        raise InvalidField(
            "events", f"expected a list of 1 to {len(AD_EVENTS)} of {list(AD_EVENTS)}"
        )
    service = request.app[ADS]
    if service is None:
        raise NotFound("ads are off on this edge")
    await break_decision(request, session, index, campaign, None)
    now = request.app[CLOCK]()
    decision_id = decision_id_for(session.session_id, index)
    try:
        built = [AdEvent(decision_id, campaign, name, now, "player") for name in events]
    except InvalidAdEvent as exc:
        raise InvalidField("events", str(exc)) from exc
    for event in built:
        service.recorder.event(event)
        request.app[METRICS].ads.events.labels(event.event, "player").inc()
    return web.json_response({"accepted": len(built)}, status=202, headers=NO_STORE)


async def campaign_report(request: web.Request) -> web.Response:
    app = request.app
    grant = app[ANALYTICS].verify_header(request.headers.get("Authorization"))
    if not grant.all_tracks:
        raise Forbidden("ad reports need a platform analytics token (all tracks)")
    campaign = check_name("campaign id", request.match_info["campaign_id"])
    day_text = (
        request.query.get("day") or datetime.fromtimestamp(app[CLOCK](), UTC).date().isoformat()
    )
    day = parse_day("day", day_text)
    store = app[AD_STORE]
    if store is None:
        raise NotFound("ads are off on this edge")
    counts = await app[BLOCKING](store.event_counts, campaign, day)
    return web.json_response(
        {"campaign_id": campaign, "day": day.isoformat(), "events": counts}, headers=NO_STORE
    )
