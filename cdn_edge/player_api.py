"""GET /player and /static/hls.min.js: a small web player for development and demos.

The page takes the listener token from its own URL (`/player?track=ID&token=JWT`), so the edge
needs no "dev mode" setting: `player_url` builds such a URL from a token the CLI issued.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from cdn_edge.state import STATIC
from streamer.settings import Settings

HLS_JS_CACHE_CONTROL = "public, max-age=3600"


def player_url(settings: Settings, track_id: str, token: str) -> str:
    """The player page URL that plays `track_id` with the listener `token`."""
    return f"{settings.base_url}/player?{urlencode({'track': track_id, 'token': token})}"


async def player_page(request: web.Request) -> web.Response:
    body = await request.app[STATIC].player_page()
    return web.Response(
        body=body,
        content_type="text/html",
        charset="utf-8",
        headers={
            "Cache-Control": "no-cache",
            # Scripts only from this origin (plus the page's own); playlists, keys and
            # segments may come from any edge or CDN host.
            "Content-Security-Policy": (
                "default-src 'self'; script-src 'self' 'unsafe-inline'; "
                "style-src 'self' 'unsafe-inline'; connect-src *; media-src * blob:; "
                "worker-src 'self' blob:"
            ),
            "Referrer-Policy": "no-referrer",  # the page URL holds a token
        },
    )


async def hls_js(request: web.Request) -> web.Response:
    body = await request.app[STATIC].hls_js()
    return web.Response(
        body=body,
        content_type="text/javascript",
        charset="utf-8",
        headers={"Cache-Control": HLS_JS_CACHE_CONTROL},
    )
