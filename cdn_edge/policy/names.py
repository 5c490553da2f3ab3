"""What a track id, version, rendition, file or key id taken from a URL may look like.

Checked before anything touches the catalog or the store, so traversal (`..`, `%2e%2e`,
encoded slashes, absolute paths) ends as a 400 here.
"""

from __future__ import annotations

import re

from cdn_edge.errors import MalformedName

# Letters, digits, '_', '-', '.'; never starting with '.', so neither "." nor ".." nor hidden.
_NAME = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,127}")


def check_name(what: str, value: str) -> str:
    """`value` if it is a safe single path part, else MalformedName (400)."""
    if not _NAME.fullmatch(value):
        raise MalformedName(
            f"{what} {value[:80]!r} is not 1 to 128 of letters, digits, '_', '-', '.' "
            "not starting with '.'"
        )
    return value
