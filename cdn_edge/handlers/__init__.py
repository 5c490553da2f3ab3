"""The edge's HTTP handlers, one module per resource; `cdn_edge.app` routes to them.

Handlers parse the request, call the playback services and pure policies, and shape the
response; they hold no state of their own (it lives on the app, `cdn_edge.state`).
"""

__all__ = [
    "events",
    "keys",
    "ops",
    "player_page",
    "playlists",
    "royalty_plays",
    "segments",
    "sessions",
    "steering",
    "tracks",
]
