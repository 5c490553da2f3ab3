"""GET / (and /player) and /static/hls.min.js: a small web player for development and demos.

The page takes the listener token from its own URL (`/?track=ID&token=JWT`), so the edge needs
no "dev mode" setting: `player_url` builds such a URL from a token the CLI issued. The page
lists `GET /v1/tracks`, opens a session, plays it with hls.js and applies the loudness gain.
Optional query parameters, for trying devices and for the browser tests:

    codecs=mp4a.40.2,opus   the device codec list sent with the session (default: probed)
    variant=flac            pin hls.js to that rendition instead of adaptive switching
    muted=1                 start muted (the gain node is still in the path)

The page reports its state on `window.playerState` (variant, codec, gain, currentTime, key
loads, level switches, errors) for tests to read.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from cdn_edge.state import STATIC
from streamer.settings import Settings

HLS_JS_CACHE_CONTROL = "public, max-age=3600"


def player_url(settings: Settings, track_id: str | None, token: str, **params: str) -> str:
    """The player page URL that lists tracks and plays `track_id` with the listener `token`.

    `params` adds the page's optional parameters (`codecs`, `variant`, `muted`).
    """
    query = {"track": track_id} if track_id else {}
    query.update(token=token, **params)
    return f"{settings.base_url}/?{urlencode(query)}"


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
