"""The edge: playback sessions, per-listener playlists, tier-scoped keys and segment origin.

`create_app` is the composition root; `build_app` opens the configured backends; the CLI calls
`server.run` (`streamer serve`) and `listener_auth.issue_dev_token` (`streamer token`).
"""

from cdn_edge.app import build_app, create_app
from cdn_edge.handlers.player_page import player_url
from cdn_edge.listener_auth import issue_dev_token
from cdn_edge.server import run

__all__ = ["build_app", "create_app", "issue_dev_token", "player_url", "run"]
