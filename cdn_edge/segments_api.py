"""GET /v1/seg/{track_id}/{version}/{name}?s=<segment token>: the origin shield.

The bytes are the same for every listener (encrypted once at ingest) and immutable, so CDNs
may cache them for a year keyed without the query string; the token only gates this origin.
Only names listed in the version's record are servable: anything else is refused before the
object store is touched. Range (206/416) and If-None-Match (304) work on cached bytes.
"""

from __future__ import annotations

import hashlib
import time

from aiohttp import web

from cdn_edge.blocking import BlockingRunner
from cdn_edge.catalog_cache import PublishedObject
from cdn_edge.errors import NotEntitled, NotFound, Unauthorized
from cdn_edge.names import check_name, check_relative_key
from cdn_edge.negotiation import TIER_RANK
from cdn_edge.ranges import etag_matches, if_range_allows, parse_range
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
from streamer.errors import StorageError
from streamer.object_store import IMMUTABLE, ObjectReader


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
    track_id = check_name("track id", request.match_info["track_id"])
    version = check_name("version", request.match_info["version"])
    name = check_relative_key(request.match_info["name"])
    token = request.query.get("s")
    if not token:
        raise Unauthorized("the segment URL needs its signature (?s=...) from the playlist")
    claims = app[TOKENS].verify_segment(token, track_id, version, int(app[CLOCK]()))
    log_fields(request).update(session_id=claims.session_id, track_id=track_id)
    track = await app[CATALOG].version(track_id, version)
    obj = track.objects.get(name)
    if obj is None:
        raise NotFound(f"track {track_id} version {version} has no object {name!r}")
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
