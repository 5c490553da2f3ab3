"""The edge application: the one place its parts are built and wired together.

POST    /v1/sessions                                 open a session (listener token)
GET     /v1/play/{session_token}/main.m3u8           multivariant playlist
GET     /v1/play/{session_token}/{rendition}.m3u8    media playlist
GET     /v1/keys/{key_id}?t={key_token}              content key, 16 bytes
GET     /v1/seg/{track}/{version}/{name}?s={token}   init section or media segment
GET     /player?track=...&token=...                  web player;  /static/hls.min.js
GET     /metrics  /healthz  /readyz
OPTIONS *                                            CORS preflight
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from cdn_edge import keys_api, ops_api, playback_api, player_api, segments_api, sessions_api
from cdn_edge.blocking import BlockingRunner
from cdn_edge.catalog_cache import CatalogCache
from cdn_edge.key_service import KeyService, key_buckets
from cdn_edge.listener_auth import ListenerVerifier
from cdn_edge.metrics import EdgeMetrics
from cdn_edge.middleware import edge_middleware
from cdn_edge.playback_tokens import PlaybackTokens
from cdn_edge.playlists import PlaylistBuilder
from cdn_edge.segment_cache import SegmentCache
from cdn_edge.session_recorder import SessionRecorder
from cdn_edge.state import (
    BLOCKING,
    CATALOG,
    CLOCK,
    KEYS,
    LISTENERS,
    METRICS,
    PLAYLISTS,
    READER,
    READY,
    SEGMENTS,
    SESSIONS,
    SETTINGS,
    STATIC,
    TOKENS,
    Readiness,
)
from cdn_edge.static_files import StaticFiles, default_hls_dir
from drm import KeyRing
from streamer.object_store import ObjectReader
from streamer.sessions import SessionStore
from streamer.settings import Settings
from streamer.token_secrets import TokenSecrets, load_token_secrets

MAX_REQUEST_BYTES = 64 * 1024  # the largest body the edge takes is a session request


def create_app(
    settings: Settings,
    object_reader: ObjectReader,
    session_store: SessionStore,
    keyring: KeyRing,
    *,
    clock: Callable[[], float] = time.time,
    secrets: TokenSecrets | None = None,
    hls_dir: Path | None = None,
) -> web.Application:
    """The edge application over these backends.

    `secrets` default to those derived from the settings (read from disk once, here);
    `hls_dir` defaults to `<repo>/web/node_modules/hls.js/dist`.
    """
    secrets = secrets if secrets is not None else load_token_secrets(settings)
    app = web.Application(middlewares=[edge_middleware], client_max_size=MAX_REQUEST_BYTES)
    blocking = BlockingRunner()
    metrics = EdgeMetrics()
    tokens = PlaybackTokens(secrets.playback_key)
    segments = SegmentCache(settings.segment_cache_bytes)
    recorder = SessionRecorder(session_store, blocking, metrics, clock)
    metrics.watch_cache(segments)
    metrics.watch_active_sessions(recorder.active)

    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[METRICS] = metrics
    app[READER] = object_reader
    app[BLOCKING] = blocking
    app[CATALOG] = CatalogCache(lambda key: blocking(object_reader.get, key), clock)
    app[SEGMENTS] = segments
    app[KEYS] = KeyService(keyring, clock, key_buckets(clock))
    app[TOKENS] = tokens
    app[LISTENERS] = ListenerVerifier(secrets.platform_key, clock)
    app[PLAYLISTS] = PlaylistBuilder(settings.base_url, tokens)
    app[SESSIONS] = recorder
    app[STATIC] = StaticFiles(hls_dir if hls_dir is not None else default_hls_dir(), blocking)
    app[READY] = Readiness()

    _add_routes(app)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_drain)
    return app


def build_app(settings: Settings) -> web.Application:
    """The edge over the backends `settings` name (the embedded defaults unless configured)."""
    from streamer.backends import open_object_store
    from streamer.keyring_file import load_or_create_keyring
    from streamer.sessions import open_session_store

    return create_app(
        settings,
        open_object_store(settings),
        open_session_store(settings),
        load_or_create_keyring(settings.kek_path),
    )


def _add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/sessions", sessions_api.create_session, name="session_create")
    app.router.add_get(
        "/v1/play/{token}/main.m3u8", playback_api.multivariant_playlist, name="playlist_main"
    )
    app.router.add_get(
        "/v1/play/{token}/{rendition}.m3u8", playback_api.media_playlist, name="playlist_media"
    )
    app.router.add_get("/v1/keys/{key_id}", keys_api.content_key, name="key")
    app.router.add_get(
        "/v1/seg/{track_id}/{version}/{name:.+}", segments_api.segment, name="segment"
    )
    app.router.add_get("/player", player_api.player_page, name="player")
    app.router.add_get("/static/hls.min.js", player_api.hls_js, name="hls_js")
    app.router.add_get("/metrics", ops_api.metrics, name="metrics")
    app.router.add_get("/healthz", ops_api.healthz, name="healthz")
    app.router.add_get("/readyz", ops_api.readyz, name="readyz")


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    app[READY].ready = True
    yield
    app[READY].ready = False
    await app[SEGMENTS].close()
    await app[CATALOG].close()
    blocking = app[BLOCKING]
    try:
        await blocking(app[SESSIONS].close)
    finally:
        blocking.close()


async def _drain(app: web.Application) -> None:
    # Shutdown has begun: fail readiness so load balancers stop sending new listeners.
    app[READY].ready = False
