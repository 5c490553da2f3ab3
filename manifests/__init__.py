"""A pure HLS playlist library: model, render, parse and lint (RFC 8216).

No sockets, files, processes or clocks: text in, model out, and back.
"""

from manifests.errors import ManifestError, PlaylistError, PlaylistParseError
from manifests.lint import lint_media, lint_multivariant
from manifests.model import (
    ByteRange,
    ContentSteering,
    DateRange,
    Key,
    Map,
    MediaPlaylist,
    MultivariantPlaylist,
    Segment,
    SessionData,
    SessionKey,
    VariantStream,
)
from manifests.parse import parse_media, parse_multivariant
from manifests.render import render_media, render_multivariant

__all__ = [
    "ByteRange",
    "ContentSteering",
    "DateRange",
    "Key",
    "ManifestError",
    "Map",
    "MediaPlaylist",
    "MultivariantPlaylist",
    "PlaylistError",
    "PlaylistParseError",
    "Segment",
    "SessionData",
    "SessionKey",
    "VariantStream",
    "lint_media",
    "lint_multivariant",
    "parse_media",
    "parse_multivariant",
    "render_media",
    "render_multivariant",
]
