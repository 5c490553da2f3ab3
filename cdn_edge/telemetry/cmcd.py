"""Common Media Client Data (CTA-5004, CMCD version 1): what a player says on each request.

A player sends CMCD as an RFC 8941 dictionary, either in one query argument (`CMCD=...`,
URL-encoded; hls.js's default) or spread over four headers by how often the keys change
(hls.js with `cmcd.useHeaders`):

    CMCD-Object   br d ot tb           the object requested
    CMCD-Request  bl dl mtp nor nrr su this request
    CMCD-Session  cid pr sf sid st v   the whole session
    CMCD-Status   bs rtp               state that changes now and then

Keys are case-sensitive; custom keys carry a hyphenated prefix ("com.example-foo"). CMCD is
advice from the client and never decides anything, so nothing here raises: a field that does
not parse is ignored whole (RFC 8941 section 4.2), a key that is unknown or of the wrong type
is ignored alone, and each reason is reported for counting.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Literal, get_args

from cdn_edge.telemetry.structured_fields import (
    BareItem,
    Member,
    StructuredFieldError,
    Token,
    parse_dictionary,
    simple_dictionary_texts,
    simple_value,
)

ObjectType = Literal["m", "a", "v", "av", "i", "c", "tt", "k", "o"]
StreamingFormat = Literal["d", "h", "s", "o"]  # DASH, HLS, Smooth, other
StreamType = Literal["v", "l"]  # VOD, live
CustomValue = int | float | str | bool

QUERY_ARGUMENT = "CMCD"
HEADERS = ("CMCD-Object", "CMCD-Request", "CMCD-Session", "CMCD-Status")
MAX_FIELD_CHARS = 4096  # hls.js sends about 250; a longer field is not a player's
MAX_STRING_CHARS = 64  # cid and sid: "MUST NOT exceed 64 characters"
MAX_NOR_CHARS = 1024
MAX_CUSTOM_KEYS = 16
MAX_KBPS_OR_MS = 10**9  # a billion kbps or 11 days of buffer: anything above is garbage

# Reasons a field or key was ignored, the label values of the malformed counter.
TOO_LONG = "too_long"
SYNTAX = "syntax"
UNKNOWN_KEY = "unknown_key"
BAD_VALUE = "bad_value"
DUPLICATE_KEY = "duplicate_key"
TOO_MANY_CUSTOM_KEYS = "too_many_custom_keys"


# One small reader per key type; each returns the key's value or raises ValueError.


def _count(item: BareItem) -> int:
    """Integer kbps or ms, at least 0."""
    if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= MAX_KBPS_OR_MS:
        raise ValueError("expected an integer >= 0")
    return item


def _version(item: BareItem) -> int:
    value = _count(item)
    if value < 1:
        raise ValueError("versions start at 1")
    return value


def _rate(item: BareItem) -> float:
    """Decimal playback rate, above 0."""
    if isinstance(item, bool) or not isinstance(item, int | float) or not 0 < item <= 100:
        raise ValueError("expected a decimal above 0")
    return float(item)


def _flag(item: BareItem) -> bool:
    if not isinstance(item, bool):
        raise ValueError("expected a key without value (true)")
    return item


def _id_string(item: BareItem) -> str:
    if isinstance(item, Token) or not isinstance(item, str) or len(item) > MAX_STRING_CHARS:
        raise ValueError(f"expected a quoted string of at most {MAX_STRING_CHARS} characters")
    return item


def _next_object(item: BareItem) -> str:
    if isinstance(item, Token) or not isinstance(item, str) or not 0 < len(item) <= MAX_NOR_CHARS:
        raise ValueError("expected a quoted relative URL")
    return item


_RANGE = re.compile(r"[0-9]{0,15}-[0-9]{0,15}")


def _next_range(item: BareItem) -> str:
    if isinstance(item, Token) or not isinstance(item, str) or not _RANGE.fullmatch(item):
        raise ValueError('expected a quoted byte range "<start>-<end>"')
    if item == "-":
        raise ValueError("a byte range needs a start or an end")
    return item


def _token_of(allowed: tuple[str, ...]) -> Callable[[BareItem], str]:
    def read(item: BareItem) -> str:
        if not isinstance(item, Token) or item not in allowed:
            raise ValueError(f"expected one of the tokens {' '.join(allowed)}")
        return str(item)

    return read


# The CTA-5004 keys (section 3.3, key definitions) and their readers.
_READERS: dict[str, Callable[[BareItem], object]] = {
    # CMCD-Object
    "br": _count,  # encoded bitrate of the object, kbps
    "d": _count,  # object duration, ms
    "ot": _token_of(get_args(ObjectType)),  # object type: m manifest, a audio, i init, k key
    "tb": _count,  # top bitrate the client may play, kbps
    # CMCD-Request
    "bl": _count,  # buffer length, ms
    "dl": _count,  # deadline: buffer left when the request was made, ms
    "mtp": _count,  # measured throughput, kbps
    "nor": _next_object,  # next object request, relative URL
    "nrr": _next_range,  # next range request, "<start>-<end>"
    "su": _flag,  # startup: needed urgently (start, seek, recovery from a stall)
    # CMCD-Session
    "cid": _id_string,  # content id
    "pr": _rate,  # playback rate (1 is not sent)
    "sf": _token_of(get_args(StreamingFormat)),
    "sid": _id_string,  # the player's session id
    "st": _token_of(get_args(StreamType)),
    "v": _version,  # CMCD version (1 is not sent)
    # CMCD-Status
    "bs": _flag,  # buffer starvation since the last request
    "rtp": _count,  # requested maximum throughput, kbps
}


def _custom_value(item: BareItem) -> CustomValue:
    if isinstance(item, bytes):
        raise ValueError("byte sequences are not taken")
    if isinstance(item, str) and len(item) > MAX_STRING_CHARS:
        raise ValueError(f"strings are at most {MAX_STRING_CHARS} characters")
    return str(item) if isinstance(item, str) else item


def _members(text: str, problems: list[str]) -> list[Member]:
    if len(text) > MAX_FIELD_CHARS:
        problems.append(TOO_LONG)
        return []
    try:
        return parse_dictionary(text)
    except StructuredFieldError:
        problems.append(SYNTAX)
        return []


# What one member means on its own, before the keys met earlier in the request are known.
_VALUE, _UNKNOWN, _BAD, _CUSTOM, _CUSTOM_BAD = range(5)
Outcome = tuple[int, object]
# Players repeat most members on every request (sid, cid, br, d, ot, sf, st, tb): what a
# simple member's text means is remembered, up to this many texts, then forgotten at once.
# Half the log shipper's CMCD time went to parsing the same members again (benchmarks/
# README.md, "Access-log shipper", issue 13).
MEMBER_MEMO_ENTRIES = 65_536
_member_memo: dict[tuple[str, str], Outcome] = {}


def _outcome(key: str, item: BareItem | tuple[object, ...], params: object) -> Outcome:
    if isinstance(item, tuple) or params:
        return _BAD, None  # CMCD v1 has no inner lists or parameters
    reader = _READERS.get(key)
    if reader is not None:
        try:
            return _VALUE, reader(item)
        except ValueError:
            return _BAD, None
    if "-" not in key:
        return _UNKNOWN, None
    try:
        return _CUSTOM, _custom_value(item)
    except ValueError:
        return _CUSTOM_BAD, None


def _simple_outcome(key: str, value_text: str) -> Outcome:
    outcome = _member_memo.get((key, value_text))
    if outcome is None:
        outcome = _outcome(key, simple_value(value_text), ())
        if len(_member_memo) >= MEMBER_MEMO_ENTRIES:
            _member_memo.clear()
        _member_memo[(key, value_text)] = outcome
    return outcome


def _outcomes(text: str, problems: list[str]) -> list[tuple[str, Outcome]]:
    """Each member of one field value with what it means alone."""
    if len(text) <= MAX_FIELD_CHARS:
        pairs = simple_dictionary_texts(text)
        if pairs is not None:
            return [(key, _simple_outcome(key, value_text)) for key, value_text in pairs]
    return [(m.key, _outcome(m.key, m.value, m.params)) for m in _members(text, problems)]


def _read_fields(
    texts: list[str],
) -> tuple[dict[str, object], dict[str, CustomValue], list[str]]:
    """The CTA-5004 keys and custom keys in these field values, and the problems met."""
    problems: list[str] = []
    values: dict[str, object] = {}
    custom: dict[str, CustomValue] = {}
    for text in texts:
        for key, (kind, value) in _outcomes(text, problems):
            if key in values or key in custom:
                problems.append(DUPLICATE_KEY)
            elif kind == _VALUE:
                values[key] = value
            elif kind == _UNKNOWN:
                problems.append(UNKNOWN_KEY)
            elif kind == _BAD:
                problems.append(BAD_VALUE)
            elif len(custom) >= MAX_CUSTOM_KEYS:
                problems.append(TOO_MANY_CUSTOM_KEYS)
            elif kind == _CUSTOM:
                custom[key] = value  # type: ignore[assignment]
            else:
                problems.append(BAD_VALUE)
    return values, custom, problems


def _request_fields(query_value: str | None, headers: Mapping[str, str]) -> list[str]:
    texts = [] if query_value is None else [query_value]
    texts.extend(headers[name] for name in HEADERS if name in headers)
    return texts


def read_cmcd_keys(
    query_value: str | None, headers: Mapping[str, str]
) -> tuple[dict[str, CustomValue], tuple[str, ...]] | None:
    """A request's CMCD keys from its `CMCD` query argument and CMCD-* headers (the first value
    of a key wins), and the problems met; None if the request has no CMCD.

    Keys are the ones the player sent, as plain JSON-safe values: false flags and absent keys
    are left out, custom keys follow the CTA-5004 ones in the order sent.
    """
    texts = _request_fields(query_value, headers)
    if not texts:
        return None
    values, custom, problems = _read_fields(texts)
    keys = {k: v for k, v in values.items() if v is not None and v is not False}
    keys.update(custom)
    return keys, tuple(problems)  # type: ignore[return-value]
