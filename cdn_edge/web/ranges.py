"""HTTP Range and conditional requests on in-memory bytes (RFC 9110 sections 13 and 14)."""

from __future__ import annotations

import re

from cdn_edge.errors import RangeNotSatisfiable

# One byte-range-spec or suffix-range (14.1.2); several ranges are answered with the whole body,
# which 14.2 allows and which no HLS player asks for anyway.
_SINGLE_RANGE = re.compile(r"bytes=[ \t]*([0-9]{0,19})-([0-9]{0,19})[ \t]*", re.IGNORECASE)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) inclusive for a satisfiable single range; None to send the whole body.

    Raises RangeNotSatisfiable (416) when the range starts past the end (14.1.2).
    """
    if not header:
        return None
    match = _SINGLE_RANGE.fullmatch(header.strip())
    if match is None:
        return None  # another unit, several ranges, or bad syntax: ignore it (14.2)
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text:
            return None
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(f"range {header!r} asks for no bytes of {size}", size)
        return max(0, size - suffix), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None  # invalid, so ignored (14.1.2)
    last = int(last_text) if last_text else size - 1
    if first >= size:
        raise RangeNotSatisfiable(f"range {header!r} starts past the end of {size} bytes", size)
    return first, min(last, size - 1)


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether If-None-Match names `etag` (weak comparison, 13.1.2) or is "*"."""
    if not header:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == etag:
            return True
    return False


def if_range_allows(header: str | None, etag: str) -> bool:
    """Whether a Range may be honoured under If-Range (13.1.5): strong ETag match only."""
    return header is None or header.strip() == etag
