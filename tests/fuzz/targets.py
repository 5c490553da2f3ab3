"""Every parser of outside input the fuzzers drive, imported in one place (a module that
moves is one edit here)."""

from __future__ import annotations

from cdn_edge.analytics_auth import AnalyticsVerifier
from cdn_edge.errors import EdgeError
from cdn_edge.handlers.events import parse_events
from cdn_edge.handlers.royalty_plays import parse_range as parse_day_range
from cdn_edge.handlers.sessions import parse_session_request
from cdn_edge.listener_auth import ListenerVerifier
from cdn_edge.playback.tokens import PlaybackTokens, SessionClaims
from cdn_edge.steering.policy import parse_report
from cdn_edge.web.compression import accepts_gzip
from cdn_edge.web.ranges import etag_matches, if_range_allows, parse_range
from drm import TokenError, authenticate_token, sign_token
from manifests import ManifestError, parse_media, parse_multivariant, render_media
from transcoder.errors import MasterRejected
from transcoder.http_api import ApiError, ingest_token_verifier
from transcoder.pcm_headers import declared_pcm_data
from transcoder.pipeline import check_declared_length
from transcoder.probe import ProbeResult

__all__ = [
    "AnalyticsVerifier",
    "ApiError",
    "EdgeError",
    "ListenerVerifier",
    "ManifestError",
    "MasterRejected",
    "PlaybackTokens",
    "ProbeResult",
    "SessionClaims",
    "TokenError",
    "accepts_gzip",
    "authenticate_token",
    "check_declared_length",
    "declared_pcm_data",
    "etag_matches",
    "if_range_allows",
    "ingest_token_verifier",
    "parse_day_range",
    "parse_events",
    "parse_media",
    "parse_multivariant",
    "parse_range",
    "parse_report",
    "parse_session_request",
    "render_media",
    "sign_token",
]
