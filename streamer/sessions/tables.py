"""The session store's tables, declared once (streamer.sessions.table_spec) for both stores.

Each column is a field of the model it stores, in the model's order. Tables only one store
has (SQLite's `play_counts`; CQL's `sessions_by_user` and the play counters and index of
streamer.sessions.scylla_plays) are not models' tables and stay with their store.
"""

from __future__ import annotations

from typing import Any

from streamer.sessions.port import (
    CMCD_RETENTION_S,
    EVENT_RETENTION_S,
    SESSION_RETENTION_S,
    PlaybackSession,
)
from streamer.sessions.table_spec import (
    BIGINT,
    BOOLEAN,
    DATE,
    DOUBLE,
    INT,
    JSON_LIST,
    JSON_OBJECT,
    TEXT,
    Column,
    Expiry,
    Table,
)
from streamer.telemetry.model import CmcdSample, PlayClaim, PlayerEvent, SegmentDelivery

MS = 1000  # model times named *_ms are milliseconds

SESSIONS = Table(
    "playback_sessions",
    PlaybackSession,
    (
        Column("session_id", TEXT),
        Column("user_id", TEXT),
        Column("tier", TEXT),
        Column("region", TEXT),
        Column("track_id", TEXT),
        Column("version", TEXT),
        Column("device", JSON_OBJECT),
        Column("variants", JSON_LIST),
        Column("created_at", BIGINT),  # unix seconds
        Column("expires_at", BIGINT),
    ),
    identity=("session_id",),
    expiry=Expiry("created_at", 1, SESSION_RETENTION_S),
)

PLAYER_EVENTS = Table(
    "player_events",
    PlayerEvent,
    (
        Column("session_id", TEXT),
        Column("event_id", TEXT),
        Column("type", TEXT),
        Column("track_id", TEXT),
        Column("client_ms", BIGINT),
        Column("received_ms", BIGINT),
        Column("position_s", DOUBLE),
        Column("seq", BIGINT),
        Column("offline", BOOLEAN),
        Column("pathway", TEXT),
        Column("bitrate_kbps", INT, optional=True),
        Column("rendition", TEXT),
        Column("from_s", DOUBLE, optional=True),
        Column("startup_ms", BIGINT, optional=True),
        Column("error_code", TEXT),
        Column("error_message", TEXT),
        Column("fatal", BOOLEAN),
    ),
    identity=("session_id", "event_id"),
    order=("client_ms", "seq", "event_id"),  # the player's order
    expiry=Expiry("received_ms", MS, EVENT_RETENTION_S),
)

CMCD_SAMPLES = Table(
    "cmcd_samples",
    CmcdSample,
    (
        Column("session_id", TEXT),
        Column("sample_id", TEXT),
        Column("received_ms", BIGINT),
        Column("route", TEXT),
        Column("object", TEXT),
        Column("status", INT),
        Column("keys", JSON_OBJECT),
    ),
    identity=("session_id", "sample_id"),
    order=("received_ms", "sample_id"),
    expiry=Expiry("received_ms", MS, CMCD_RETENTION_S),
)

SEGMENT_DELIVERIES = Table(
    "segment_deliveries",
    SegmentDelivery,
    (
        Column("session_id", TEXT),
        Column("track_id", TEXT),
        Column("version", TEXT),
        Column("rendition", TEXT),
        Column("name", TEXT),
        Column("start_s", DOUBLE),
        Column("duration_s", DOUBLE),
        Column("delivered_ms", BIGINT),
    ),
    identity=("session_id", "name"),
    order=("delivered_ms", "name"),
    expiry=Expiry("delivered_ms", MS, EVENT_RETENTION_S),
)

# Royalty plays: the claim that won, one per session. Kept for good.
PLAYS = Table(
    "plays",
    PlayClaim,
    (
        Column("session_id", TEXT),
        Column("track_id", TEXT),
        Column("day", DATE),
        Column("played_ms", BIGINT),
        Column("offline", BOOLEAN),
    ),
    identity=("session_id",),
    cql_name="plays_by_session",
)

TABLES: tuple[Table[Any], ...] = (
    SESSIONS,
    PLAYER_EVENTS,
    CMCD_SAMPLES,
    SEGMENT_DELIVERIES,
    PLAYS,
)
