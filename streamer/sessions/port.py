"""The session store's ports: a session log, a telemetry store and a play ledger.

    SessionLog      playback sessions as the edge opens them (support and analytics; the edge
                    never reads one on the playback path: its tokens are stateless)
    TelemetryStore  what players and the edge report about a session (streamer.telemetry.model)
    PlayLedger      royalty plays: one claim per session, counts per track and UTC day, and
                    the recount that repairs a count

One store object implements all three over one SQLite file (`SQLiteSessionStore`, the
embedded default) or one CQL keyspace (`ScyllaSessionStore`); `SessionStore` names the three
together for `streamer.backends`, which opens it. Everything else depends on the port it uses.
Each port has its contract suite in tests/contract/, run over both.

Calls are synchronous and may block; async callers run them in a thread. Every call may raise
StorageError; a closed store raises it for every call.
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
SESSION_RETENTION_S = 400 * 86_400  # sessions: thirteen months, for year-on-year support
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


@dataclass(frozen=True)
class PlayRecount:
    """One recount of a track's plays on a UTC day: what its count said, what its claims say."""

    track_id: str
    day: date
    counted: int  # the count before the recount
    claims: int  # the sessions whose claim was counted on the day: the count now

    @property
    def corrected(self) -> bool:
        return self.counted != self.claims


class SessionLog(Protocol):
    """Where the edge records the sessions it opens."""

    def record_session(self, session: PlaybackSession) -> None:
        """Store `session`, replacing any session with the same id."""
        ...

    def get_session(self, session_id: str) -> PlaybackSession | None:
        """The session with this id, or None."""
        ...

    def close(self) -> None:
        """Release connections; further calls are errors."""
        ...


class TelemetryStore(Protocol):
    """Where player events, CMCD samples and segment deliveries are kept, each once."""

    # Items per `write_telemetry` call that suit this store (the edge's writer batches up to
    # this many).
    telemetry_batch_items: int

    def write_telemetry(self, batch: TelemetryBatch) -> None:
        """Store every item of `batch`, each at most once however often it is written.

        Events are kept once per (session, event id), CMCD samples once per (session, sample
        id), deliveries once per (session, name); the first copy wins. On StorageError nothing
        or everything may have been written: writing the batch again is safe.
        """
        ...

    def session_telemetry(self, session_id: str) -> SessionTelemetry:
        """All that is stored about the session's playback, its play included (empty if
        none): for support and reports, one read."""
        ...

    def events_of(self, session_ids: Sequence[str]) -> dict[str, tuple[PlayerEvent, ...]]:
        """Each session's player events in order (as in `session_telemetry`), for a batch of
        sessions read together; () for a session without any."""
        ...

    def deliveries_of(self, session_ids: Sequence[str]) -> dict[str, tuple[SegmentDelivery, ...]]:
        """Each session's segment deliveries (as in `session_telemetry`), read together."""
        ...

    def close(self) -> None:
        """Release connections; further calls are errors."""
        ...


class PlayLedger(Protocol):
    """Royalty plays: a session's first claim is counted on its track's day, once.

    Counts are what creators are paid by. A store whose count can drift from its claims (the
    CQL counter, see streamer.sessions.scylla_plays) marks the days it doubts; `recount_due`
    repairs them and `recount_plays` repairs any day on demand (`streamer plays recount`).
    """

    def claim_plays(self, plays: Sequence[PlayClaim]) -> tuple[PlayClaim, ...]:
        """Count each claim whose session has none counted yet, on its track's day; later
        claims of a session are ignored. Returns the claims this call counted. On
        StorageError claiming again is safe: a session is never counted twice."""
        ...

    def plays_by_day(self, track_id: str, first: date, last: date) -> dict[date, int]:
        """Plays of the track counted on each UTC day from `first` to `last`, both included;
        days without plays are left out."""
        ...

    def recount_plays(self, track_id: str, day: date) -> PlayRecount:
        """Set the track's count for `day` to the number of its sessions' claims on that day.

        Run one recount of a track and day at a time. StorageError if the count kept moving
        under it (plays still arriving): run it again later.
        """
        ...

    def recount_due(self, day: date) -> tuple[PlayRecount, ...]:
        """Recount the tracks whose count for `day` may be off; the recounts done. Callers in
        several processes at once share the work: each track is recounted by one of them.
        A track whose recount fails stays due for the next call."""
        ...

    def close(self) -> None:
        """Release connections; further calls are errors."""
        ...


class SessionStore(SessionLog, TelemetryStore, PlayLedger, Protocol):
    """The three ports in one store: what `streamer.backends.open_session_store` opens."""
