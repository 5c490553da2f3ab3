"""Errors raised by the playlist library.

    ManifestError                      (500)
    ├── PlaylistError                  (500)  a playlist model breaks RFC 8216 when built
    └── PlaylistParseError             (500)  playlist text does not parse; names the line

Both leaves are also ValueError. Each error carries the HTTP status it maps to so handlers
never parse messages: a playlist we cannot build or read is our own fault, hence 500.
"""

from __future__ import annotations


class ManifestError(Exception):
    """Base class of every error the playlist library raises on purpose."""

    http_status = 500


class PlaylistError(ManifestError, ValueError):
    """A playlist or tag was built with values RFC 8216 forbids."""


class PlaylistParseError(ManifestError, ValueError):
    """Playlist text is malformed; `line` is the 1-based line at fault, if one is."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message if line is None else f"line {line}: {message}")
        self.line = line
