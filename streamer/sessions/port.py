"""Playback sessions: what the edge records when a listener starts a track.

The edge never reads a session on the playback path (its tokens are stateless); the record is
for support and analytics. Beside it the store keeps the session's telemetry (player events,
CMCD samples, segment deliveries; see streamer.telemetry.model) and the royalty plays it counted.
Two implementations pass one contract suite: `SqliteSessionStore` (the embedded default) and,
later, a Scylla one.

Calls are synchronous and may block; async callers run them in a thread.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from streamer.catalog import Tier
from streamer.telemetry.model import (
    PlayClaim,
    PlayerEvent,
    SegmentDelivery,
    SessionTelemetry,
    TelemetryBatch,
)

# How long each kind of record is kept (the Scylla tables' TTLs, the SQLite store's pruning).
# Plays and their counts are royalty records and are kept for good.
SESSION_RETENTION_S = 400 * 86_400  # sessions and QoE: thirteen months, for year-on-year support
EVENT_RETENTION_S = 90 * 86_400  # player events and segment deliveries
CMCD_RETENTION_S = 30 * 86_400  # CMCD samples: the most numerous, the least looked at

SESSION_STORE_FILE = "sessions.sqlite3"  # under settings.data_dir


@dataclass(frozen=True)
class PlaybackSession:
    """One listener playing one version of one track, from `created_at` to `expires_at`."""

    session_id: str
    user_id: str
    tier: Tier
    region: str
    track_id: str
    version: str
    device: Mapping[str, Any] = field(default_factory=dict)  # as the player sent it, JSON-safe
    variants: tuple[str, ...] = ()  # offered renditions, start variant first
    created_at: int = 0  # unix seconds
    expires_at: int = 0  # unix seconds

    def __post_init__(self) -> None:
        if not self.session_id:
            raise ValueError("a playback session needs a session_id")
        if self.expires_at < self.created_at:
            raise ValueError(
                f"session {self.session_id} expires at {self.expires_at}, "
                f"before it was created at {self.created_at}"
            )
        object.__setattr__(self, "variants", tuple(self.variants))

    def device_json(self) -> str:
        return json.dumps(dict(self.device), sort_keys=True, separators=(",", ":"))


class SessionStore(Protocol):
    """Where playback sessions, their telemetry and their plays are recorded."""

    # Telemetry items per `write_telemetry` call that suit this store (the edge's writer
    # batches up to this many).
    telemetry_batch_items: int

    def record_session(self, session: PlaybackSession) -> None:
        """Store `session`, replacing any session with the same id. Raises StorageError."""
        ...

    def get_session(self, session_id: str) -> PlaybackSession | None:
        """The session with this id, or None. Raises StorageError."""
        ...

    def write_telemetry(self, batch: TelemetryBatch) -> tuple[PlayClaim, ...]:
        """Store every item of `batch`, each at most once however often it is written.

        Events are kept once per (session, event id), CMCD samples once per (session, sample
        id), deliveries once per (session, name), plays once per session: the first claim of
        a session is counted on its track's day, later ones are ignored. Returns the plays
        this call counted. Raises StorageError (nothing or everything may have been written;
        writing the batch again is safe).
        """
        ...

    def session_telemetry(self, session_id: str) -> SessionTelemetry:
        """All that is stored about the session's playback (empty if none). Raises StorageError."""
        ...

    def events_of(self, session_ids: Sequence[str]) -> dict[str, tuple[PlayerEvent, ...]]:
        """Each session's player events in order (as in `session_telemetry`), for a batch of
        sessions read together; () for a session without any. Raises StorageError."""
        ...

    def deliveries_of(self, session_ids: Sequence[str]) -> dict[str, tuple[SegmentDelivery, ...]]:
        """Each session's segment deliveries (as in `session_telemetry`), read together.
        Raises StorageError."""
        ...

    def plays_by_day(self, track_id: str, first: date, last: date) -> dict[date, int]:
        """Plays of the track counted on each UTC day from `first` to `last`, both included;
        days without plays are left out. Raises StorageError."""
        ...

    def close(self) -> None:
        """Release connections; further calls are errors."""
        ...
