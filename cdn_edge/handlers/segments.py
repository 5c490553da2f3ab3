"""GET /v1/s/{token}/{rendition}/{file}: init sections and segments, from the edge itself.

With the nginx tier in front (`cdn_edge.nginx_tier`, the default where nginx is installed)
nginx serves these paths and this handler is not reached; without it (`--segments python`)
the edge is the origin shield. Either way the session token in the path is checked, and the
rendition must be one the session was offered (the offer is tier-checked when the session
opens). The bytes are the same for every listener (encrypted once at ingest) and immutable,
so CDNs may cache them for a year keyed without the token. Only names listed in the version's
record are servable: anything else is refused before the object store is touched. Range
(206/416) and If-None-Match (304) work on cached bytes.
"""

from __future__ import annotations

import hashlib
import time

from aiohttp import web

from cdn_edge.blocking import BlockingRunner
from cdn_edge.errors import NotEntitled, NotFound
from cdn_edge.playback.catalog_cache import PublishedObject
from cdn_edge.playback.playlist_builder import PlaylistBuilder
from cdn_edge.policy.names import check_name
from cdn_edge.policy.negotiation import TIER_RANK
from cdn_edge.state import (
    BLOCKING,
    CAPTURE,
    CATALOG,
    CLOCK,
    METRICS,
    READER,
    SEGMENTS,
    TOKENS,
    log_fields,
)
from cdn_edge.web.ranges import etag_matches, if_range_allows, parse_range
from streamer.errors import StorageError
from streamer.objects.port import IMMUTABLE, ObjectReader


def read_verified(reader: ObjectReader, obj: PublishedObject) -> bytes:
    """The object's bytes, checked against the record (runs in a thread)."""
    data = reader.get(obj.key)
    if len(data) != obj.size or hashlib.sha256(data).hexdigest() != obj.sha256:
        # A torn or replaced object must not be cached for a year by every CDN.
        raise StorageError(
            f"object {obj.key} is {len(data)} bytes and does not match the sha256 and size "
            f"{obj.size} its track record lists"
        )
    return data


async def _load(run: BlockingRunner, reader: ObjectReader, obj: PublishedObject) -> bytes:
    return await run(read_verified, reader, obj)


async def segment(request: web.Request) -> web.Response:
    started = time.perf_counter()  # for CMSD's response delay
    app = request.app
    # Names first: malformed or traversing paths end here, before tokens, catalog or store.
    rendition = check_name("rendition", request.match_info["rendition"])
    name = f"{rendition}/{check_name('file', request.match_info['file'])}"
    claims = app[TOKENS].verify_session(request.match_info["token"], int(app[CLOCK]()))
    log_fields(request).update(session_id=claims.session_id, track_id=claims.track_id)
    track = await app[CATALOG].version(claims.track_id, claims.version)
    PlaylistBuilder.check_offered(track, claims, rendition)  # 404 or 403 (tier)
    obj = track.objects.get(name)
    if obj is None:
        raise NotFound(f"track {claims.track_id} version {claims.version} has no {name!r}")
    if TIER_RANK[obj.tier] > TIER_RANK[claims.tier]:
        raise NotEntitled(f"{name} belongs to a {obj.tier} rendition; the session is {claims.tier}")

    etag = f'"{obj.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": IMMUTABLE,
        "Accept-Ranges": "bytes",
    }
    if etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)

    cache = app[SEGMENTS]
    metrics = app[METRICS]
    data = cache.peek(obj.key)
    if data is not None:
        metrics.cache_hits.inc()
    else:
        metrics.cache_misses.inc()
        reader, run = app[READER], app[BLOCKING]
        data = await cache.get(obj.key, lambda: _load(run, reader, obj))

    # The session's delivery record (play evidence) and the CMSD headers; never fails.
    headers.update(app[CAPTURE].segment_served(request, claims, track, obj, name, started))
    byte_range = None
    if if_range_allows(request.headers.get("If-Range"), etag):
        byte_range = parse_range(request.headers.get("Range"), len(data))
    if byte_range is None:
        return web.Response(body=data, content_type=obj.content_type, headers=headers)
    first, last = byte_range
    headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
    return web.Response(
        status=206, body=data[first : last + 1], content_type=obj.content_type, headers=headers
    )
