"""Typed keys of the objects `create_app` shares with the handlers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from cdn_edge.admin_auth import AdminVerifier
from cdn_edge.ads.service import AdDecisionService
from cdn_edge.analytics_auth import AnalyticsVerifier
from cdn_edge.audit_writer import AuditWriter
from cdn_edge.blocking import BlockingRunner
from cdn_edge.listener_auth import ListenerVerifier
from cdn_edge.metrics import EdgeMetrics
from cdn_edge.playback.catalog_cache import CatalogCache
from cdn_edge.playback.key_service import KeyService
from cdn_edge.playback.offline_licences import OfflineLicences
from cdn_edge.playback.playlist_builder import PlaylistBuilder
from cdn_edge.playback.segment_cache import SegmentCache
from cdn_edge.playback.tokens import PlaybackTokens
from cdn_edge.policy.event_budget import EventBudgets
from cdn_edge.steering.health import HealthBoard
from cdn_edge.steering.pathways import Pathway
from cdn_edge.steering.throughput_history import ThroughputHistory
from cdn_edge.telemetry.capture import TelemetryCapture
from cdn_edge.telemetry.session_recorder import SessionRecorder
from cdn_edge.telemetry.writer import TelemetryWriter
from cdn_edge.web.access_log import AccessLog
from cdn_edge.web.static_files import StaticFiles
from streamer.ads.port import AdStore
from streamer.objects.port import ObjectReader
from streamer.sessions.port import PlayLedger, TelemetryStore
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
# What the nginx gate's key fetch must carry (cdn_edge.playback.gate_keys), one per playback key.
GATE_CREDENTIALS: web.AppKey[tuple[str, ...]] = web.AppKey("gate_credentials")
LISTENERS = web.AppKey("listener_verifier", ListenerVerifier)
PLAYLISTS = web.AppKey("playlists", PlaylistBuilder)
SESSIONS = web.AppKey("session_recorder", SessionRecorder)
STATIC = web.AppKey("static_files", StaticFiles)
READY = web.AppKey("readiness", Readiness)
ACCESS_LOG = web.AppKey("access_log", AccessLog)
# Telemetry: the writer, what the playback path captures, the stores reports read.
TELEMETRY = web.AppKey("telemetry_writer", TelemetryWriter)
CAPTURE = web.AppKey("telemetry_capture", TelemetryCapture)
EVENT_BUDGETS = web.AppKey("event_budgets", EventBudgets)  # player events per session
TELEMETRY_STORE: web.AppKey[TelemetryStore] = web.AppKey("telemetry_store")
PLAY_LEDGER: web.AppKey[PlayLedger] = web.AppKey("play_ledger")
ANALYTICS = web.AppKey("analytics_verifier", AnalyticsVerifier)
# Content steering: the pathways (the edge first), their health, listeners' throughput.
PATHWAYS: web.AppKey[tuple[Pathway, ...]] = web.AppKey("pathways")
PATHWAY_HEALTH = web.AppKey("pathway_health", HealthBoard)
THROUGHPUT: web.AppKey[ThroughputHistory] = web.AppKey("throughput_history")
AUDIT = web.AppKey("audit_writer", AuditWriter)  # key grants and other audited actions

# Offline downloads: None when the edge was built without an offline store (503 on its routes).
OFFLINE: web.AppKey[OfflineLicences | None] = web.AppKey("offline_licences")
ADMINS: web.AppKey[AdminVerifier] = web.AppKey("admin_verifier")

REQUEST_ID = web.RequestKey("request_id", str)
# Fields a handler adds to the request's access log line (session id, track, key id).
LOG_FIELDS = web.RequestKey("log_fields", dict[str, Any])


def log_fields(request: web.Request) -> dict[str, Any]:
    return request[LOG_FIELDS]


# Audio ads (cdn_edge.ads): the decision service (None: ads are off), the store reports read.
ADS: web.AppKey[AdDecisionService | None] = web.AppKey("ad_decisions")
AD_STORE: web.AppKey[AdStore | None] = web.AppKey("ad_store")
ADS_ADMIN = web.AppKey("ads_admin_verifier", AdminVerifier)  # the campaign admin API
