"""GET /v1/play/{token}/main.m3u8 and /v1/play/{token}/{rendition}.m3u8: session playlists.

The session token in the path is all the state there is. Without CDN pathways the
multivariant playlist names its media playlists relatively ("aac_160.m3u8"), so they resolve
under the same token; with pathways it names them absolutely, once per pathway, and starts
the session on its best pathway (see `cdn_edge.steering`).
"""

from __future__ import annotations

from aiohttp import web

from cdn_edge.compression import MIN_GZIP_BYTES, accepts_gzip, gzip_bytes
from cdn_edge.playback_tokens import SessionClaims
from cdn_edge.state import CATALOG, CLOCK, PLAYLISTS, TOKENS, log_fields
from cdn_edge.steering_api import session_priority

PLAYLIST_CONTENT_TYPE = "application/vnd.apple.mpegurl"  # RFC 8216 section 4
# Personal (tokens inside), so never in a shared cache; a player may reuse it for a minute.
PLAYLIST_CACHE_CONTROL = "private, max-age=60"


def _session(request: web.Request, now: int) -> SessionClaims:
    claims = request.app[TOKENS].verify_session(request.match_info["token"], now)
    log_fields(request).update(session_id=claims.session_id, track_id=claims.track_id)
    return claims


def playlist_response(request: web.Request, text: str) -> web.Response:
    body = text.encode()
    headers = {"Cache-Control": PLAYLIST_CACHE_CONTROL, "Vary": "Accept-Encoding"}
    if len(body) >= MIN_GZIP_BYTES and accepts_gzip(request.headers.get("Accept-Encoding")):
        body = gzip_bytes(body)
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, content_type=PLAYLIST_CONTENT_TYPE, headers=headers)


async def multivariant_playlist(request: web.Request) -> web.Response:
    app = request.app
    now = int(app[CLOCK]())
    session = _session(request, now)
    track = await app[CATALOG].version(session.track_id, session.version)
    playlists = app[PLAYLISTS]
    token = request.match_info["token"]
    if not playlists.steered:
        return playlist_response(request, playlists.multivariant(track, session, token))
    first_pathway = session_priority(app, session)[0]
    text = playlists.multivariant(track, session, token, first_pathway=first_pathway)
    return playlist_response(request, text)


async def media_playlist(request: web.Request) -> web.Response:
    app = request.app
    now = int(app[CLOCK]())
    session = _session(request, now)
    track = await app[CATALOG].version(session.track_id, session.version)
    rendition = request.match_info["rendition"]
    log_fields(request)["rendition"] = rendition[:64]
    text = app[PLAYLISTS].media(track, session, request.match_info["token"], rendition, now)
    return playlist_response(request, text)
