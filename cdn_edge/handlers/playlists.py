"""GET /v1/s/{token}/main.m3u8 and /v1/s/{token}/{rendition}/playlist.m3u8: session playlists.

The session token in the path is all the state there is, and one check of it (an HMAC, or the
verified-token cache) is all a playlist costs: media playlists, and multivariant ones without CDN
pathways, are the same bytes for every session (see `cdn_edge.playback.playlist_builder`), kept in
memory plain and gzipped. With pathways, the multivariant playlist names every variant absolutely on
each pathway, under the session's token, and starts the session on its best pathway (see
`cdn_edge.steering.policy`).
"""

from __future__ import annotations

from aiohttp import web

from cdn_edge.handlers.steering import session_priority
from cdn_edge.playback.playlist_builder import PlaylistBody
from cdn_edge.playback.tokens import SessionClaims
from cdn_edge.state import CATALOG, CLOCK, PLAYLISTS, TOKENS, log_fields
from cdn_edge.web.compression import MIN_GZIP_BYTES, accepts_gzip, gzip_bytes

PLAYLIST_CONTENT_TYPE = "application/vnd.apple.mpegurl"  # RFC 8216 section 4
# Under a personal URL, so never in a shared cache. A published version's playlists never
# change, but a steered multivariant playlist's pathway order may: a minute.
PLAYLIST_CACHE_CONTROL = "private, max-age=60"
_HEADERS = {"Cache-Control": PLAYLIST_CACHE_CONTROL, "Vary": "Accept-Encoding"}


def _session(request: web.Request) -> SessionClaims:
    now = int(request.app[CLOCK]())
    claims = request.app[TOKENS].verify_session(request.match_info["token"], now)
    log_fields(request).update(session_id=claims.session_id, track_id=claims.track_id)
    return claims


def _respond(request: web.Request, plain: bytes, gzipped: bytes | None) -> web.Response:
    headers = dict(_HEADERS)
    body = plain
    if gzipped is not None and accepts_gzip(request.headers.get("Accept-Encoding")):
        body = gzipped
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, content_type=PLAYLIST_CONTENT_TYPE, headers=headers)


def cached_response(request: web.Request, body: PlaylistBody) -> web.Response:
    """A playlist rendered once for every session: no work but choosing the encoding."""
    return _respond(request, body.plain, body.gzipped)


def playlist_response(request: web.Request, text: str) -> web.Response:
    plain = text.encode()
    return _respond(request, plain, gzip_bytes(plain) if len(plain) >= MIN_GZIP_BYTES else None)


async def multivariant_playlist(request: web.Request) -> web.Response:
    app = request.app
    session = _session(request)
    track = await app[CATALOG].version(session.track_id, session.version)
    playlists = app[PLAYLISTS]
    if not playlists.steered:
        return cached_response(request, playlists.multivariant(track, session))
    first_pathway = session_priority(app, session)[0]
    token = request.match_info["token"]
    text = playlists.steered_multivariant(track, session, token, first_pathway)
    return playlist_response(request, text)


async def media_playlist(request: web.Request) -> web.Response:
    app = request.app
    session = _session(request)
    track = await app[CATALOG].version(session.track_id, session.version)
    rendition = request.match_info["rendition"]
    log_fields(request)["rendition"] = rendition[:64]
    return cached_response(request, app[PLAYLISTS].media(track, session, rendition))
