"""What a track id, version, rendition or object name taken from a URL may look like.

Checked before anything touches the catalog or the store, so traversal (`..`, `%2e%2e`,
encoded slashes, absolute paths) ends as a 400 here.
"""

from __future__ import annotations

import re

from cdn_edge.errors import MalformedName

# Letters, digits, '_', '-', '.'; never starting with '.', so neither "." nor ".." nor hidden.
_NAME = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,127}")
MAX_RELATIVE_KEY_LENGTH = 256
MAX_RELATIVE_KEY_PARTS = 4


def check_name(what: str, value: str) -> str:
    """`value` if it is a safe single path part, else MalformedName (400)."""
    if not _NAME.fullmatch(value):
        raise MalformedName(
            f"{what} {value[:80]!r} is not 1 to 128 of letters, digits, '_', '-', '.' "
            "not starting with '.'"
        )
    return value


def check_relative_key(value: str) -> str:
    """An object key relative to a version prefix: a few safe parts joined by '/'."""
    if len(value) > MAX_RELATIVE_KEY_LENGTH:
        raise MalformedName(
            f"object name {value[:80]!r}... has {len(value)} characters; "
            f"at most {MAX_RELATIVE_KEY_LENGTH} are allowed"
        )
    parts = value.split("/")
    if len(parts) > MAX_RELATIVE_KEY_PARTS:
        raise MalformedName(
            f"object name {value!r} has {len(parts)} parts; at most {MAX_RELATIVE_KEY_PARTS} "
            "are allowed"
        )
    for part in parts:
        check_name("object name part", part)
    return value
