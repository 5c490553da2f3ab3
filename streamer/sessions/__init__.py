"""Playback sessions, their telemetry and royalty plays, as the session store keeps them.

`port` holds the session model and the `SessionStore` interface; `sqlite` (the embedded
default) and `scylla` (with `scylla_plays`, the play ledger in CQL) implement it.
"""

from streamer.sessions.port import PlaybackSession, SessionStore

__all__ = ["PlaybackSession", "SessionStore"]
