"""Typed keys of the objects `create_app` shares with the handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from cdn_edge.blocking import BlockingRunner
from cdn_edge.catalog_cache import CatalogCache
from cdn_edge.key_service import KeyService
from cdn_edge.listener_auth import ListenerVerifier
from cdn_edge.metrics import EdgeMetrics
from cdn_edge.playback_tokens import PlaybackTokens
from cdn_edge.playlists import PlaylistBuilder
from cdn_edge.segment_cache import SegmentCache
from cdn_edge.session_recorder import SessionRecorder
from cdn_edge.static_files import StaticFiles
from streamer.object_store import ObjectReader
from streamer.settings import Settings


@dataclass
class Readiness:
    """Whether to take new traffic: false before startup and once draining has begun."""

    ready: bool = False


SETTINGS = web.AppKey("settings", Settings)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
METRICS = web.AppKey("metrics", EdgeMetrics)
READER = web.AppKey("object_reader", ObjectReader)
BLOCKING = web.AppKey("blocking", BlockingRunner)
CATALOG = web.AppKey("catalog", CatalogCache)
SEGMENTS = web.AppKey("segment_cache", SegmentCache)
KEYS = web.AppKey("key_service", KeyService)
TOKENS = web.AppKey("playback_tokens", PlaybackTokens)
LISTENERS = web.AppKey("listener_verifier", ListenerVerifier)
PLAYLISTS = web.AppKey("playlists", PlaylistBuilder)
SESSIONS = web.AppKey("session_recorder", SessionRecorder)
STATIC = web.AppKey("static_files", StaticFiles)
READY = web.AppKey("readiness", Readiness)

REQUEST_ID = web.RequestKey("request_id", str)
# Fields a handler adds to the request's access log line (session id, track, key id).
LOG_FIELDS = web.RequestKey("log_fields", dict[str, Any])


def log_fields(request: web.Request) -> dict[str, Any]:
    return request[LOG_FIELDS]
