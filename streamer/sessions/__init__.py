"""Playback sessions, their telemetry and royalty plays, as the session store keeps them.

`port` holds the session model and the three ports (SessionLog, TelemetryStore, PlayLedger);
`tables` declares the tables of the models once (`table_spec`), for both stores: `sqlite`
(the embedded default, with `sqlite_plays`) and `scylla` (with `scylla_plays`, the play ledger
in CQL). `recount` sweeps the ledger's recounts over the days a play may still land on.
"""

from streamer.sessions.port import (
    PlaybackSession,
    PlayLedger,
    PlayRecount,
    SessionLog,
    SessionStore,
    TelemetryStore,
)

__all__ = [
    "PlayLedger",
    "PlayRecount",
    "PlaybackSession",
    "SessionLog",
    "SessionStore",
    "TelemetryStore",
]
