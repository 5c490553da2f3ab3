"""Key rotation periods: which content key encrypts which segment.

Segments are grouped into periods of `rotation_segments` consecutive segments; every period of
every tier of every version has its own content key, named by `content_key_id`.

Content key id format: ``{version}-{tier}-{period}``, for example ``v3-aac_160-12``.

- `version`: 1 to 64 of ``A-Z a-z 0-9 _ . -``
- `tier`: 1 to 64 of ``A-Z a-z 0-9 _ .`` (no ``-``, so the id splits unambiguously from the right)
- `period`: a non-negative decimal integer without leading zeros

These characters are unreserved in URLs (RFC 3986 section 2.3) and safe in object keys, and
`parse_content_key_id` inverts `content_key_id` exactly.
"""

from __future__ import annotations

import re

from drm.errors import InvalidKeyId, KeyScheduleError

_VERSION = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_TIER = re.compile(r"[A-Za-z0-9_.]{1,64}")
_PERIOD = re.compile(r"0|[1-9][0-9]*")
_MAX_KEY_ID_LENGTH = 256  # bounds int() parsing; real ids are far shorter


def _check_int(name: str, value: int, minimum: int) -> None:
    if type(value) is not int or value < minimum:
        raise KeyScheduleError(f"{name} must be an integer >= {minimum}, got {value!r}")


def key_period(segment_index: int, rotation_segments: int) -> int:
    """The rotation period of the segment with this (0-based) index."""
    _check_int("segment_index", segment_index, 0)
    _check_int("rotation_segments", rotation_segments, 1)
    return segment_index // rotation_segments


def content_key_id(version: str, tier: str, period: int) -> str:
    """The id ``{version}-{tier}-{period}`` of a content key; see the module docstring."""
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise InvalidKeyId(f"version {version!r} is not 1 to 64 of letters, digits, '_', '.', '-'")
    if not isinstance(tier, str) or not _TIER.fullmatch(tier):
        raise InvalidKeyId(f"tier {tier!r} is not 1 to 64 of letters, digits, '_', '.'")
    _check_int("period", period, 0)
    return f"{version}-{tier}-{period}"


def parse_content_key_id(key_id: str) -> tuple[str, str, int]:
    """Split a content key id into (version, tier, period). Raises InvalidKeyId."""
    parts = key_id.rsplit("-", 2)
    if (
        len(key_id) > _MAX_KEY_ID_LENGTH
        or len(parts) != 3
        or not _VERSION.fullmatch(parts[0])
        or not _TIER.fullmatch(parts[1])
        or not _PERIOD.fullmatch(parts[2])
    ):
        raise InvalidKeyId(
            f"content key id {key_id[:200]!r} is not '{{version}}-{{tier}}-{{period}}'"
        )
    return parts[0], parts[1], int(parts[2])
