"""One nginx access-log record (the `log_format ... escape=json` line of the delivery tier).

nginx writes every value as a JSON string, "" when absent. Unknown fields are ignored, so the
nginx config may add fields before the shipper knows them. Values are checked here, strictly,
because the store must be able to keep whatever comes out: a line that fails is counted and
skipped by the shipper, never written.

Lines are decoded with orjson (about 2.5x the standard library on these lines). orjson refuses
some JSON the standard library takes (a lone surrogate escape, integers past 64 bits, a BOM,
UTF-16); such a line is decoded again by `json` so that it is judged exactly as before: taken,
or refused with the reason the checks below give.
"""

from __future__ import annotations

import json
import math
import operator
import re
from dataclasses import dataclass, fields
from typing import Any

import orjson

from cdn_edge.logship.errors import MalformedLine
from streamer.telemetry.model import is_text

MAX_LINE_BYTES = 64 * 1024  # nginx's own log buffer lines are far shorter; longer is garbage
# nginx's $body_bytes_sent is an off_t. Bounding it also keeps the decoders in agreement:
# orjson reads an integer past 64 bits as a float, the standard library exactly.
MAX_BODY_BYTES = 2**63 - 1
_REQUEST_ID = re.compile(r"[0-9a-f]{32}")  # $request_id: 16 random bytes in hex

# Reason codes (the label values of the shipper's malformed-line counter).
NOT_JSON = "not_json"
NOT_OBJECT = "not_object"
BAD_FIELD = "bad_field"
TOO_LONG = "too_long"
TORN = "torn"  # a rotated file ended in the middle of a line


@dataclass(frozen=True)
class AccessLogLine:
    """The fields of one access-log line the shipper uses, typed; "" where nginx had none."""

    ts: float  # $msec: unix seconds with milliseconds
    status: int  # $status
    bytes_sent: int  # $body_bytes_sent
    request_time_s: float  # $request_time
    request_id: str  # $request_id: 32 hex characters, unique per request
    method: str = ""
    uri: str = ""  # without the token
    session_id: str = ""  # empty when the token did not verify
    track_id: str = ""
    version: str = ""
    tier: str = ""
    rendition: str = ""
    object: str = ""  # file name within the rendition: "seg_00003.m4s", "init.mp4"
    cmcd_query: str = ""  # the CMCD query argument as sent (URL-encoded)
    cmcd_object: str = ""  # the CMCD-Object, -Request, -Session and -Status header values
    cmcd_request: str = ""
    cmcd_session: str = ""
    cmcd_status: str = ""
    range: str = ""
    user_agent: str = ""
    connection: str = ""
    connection_requests: str = ""
    route: str = ""  # "segment", "playlist", "key" (served after the gate) or "edge"
    key_tier: str = ""  # on route "key": the tier of the key asked for

    @property
    def object_key(self) -> str:
        """The object's name within its version, as the track record lists it."""
        return f"{self.rendition}/{self.object}"


# The plain text fields, in AccessLogLine's order after request_id; the JSON names are the
# dataclass's names.
_TEXT_FIELDS = (
    "method",
    "uri",
    "session_id",
    "track_id",
    "version",
    "tier",
    "rendition",
    "object",
    "cmcd_query",
    "cmcd_object",
    "cmcd_request",
    "cmcd_session",
    "cmcd_status",
    "range",
    "user_agent",
    "connection",
    "connection_requests",
    "route",
    "key_tier",
)


_texts_of = operator.itemgetter(*_TEXT_FIELDS)
_STR_ONLY = {str}
_FIELD_NAMES = tuple(f.name for f in fields(AccessLogLine))


def _text(raw: dict[str, Any], name: str) -> str:
    value = raw.get(name, "")
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MalformedLine(BAD_FIELD, f"field {name!r} is a {type(value).__name__}, not text")
    text = value if isinstance(value, str) else str(value)
    if not is_text(text):  # a lone surrogate from a \ud800 escape: no store can keep it
        raise MalformedLine(BAD_FIELD, f"field {name!r} is not valid Unicode text")
    return text


def _number(value: Any, name: str, kind: type[int] | type[float], low: float) -> Any:
    if type(value) is kind and value >= low and (kind is int or math.isfinite(value)):
        return value  # what nginx writes: a bare number of the right kind (NaN fails >=)
    # nginx writes a string or a bare number; a bool is a JSON number to `int` but not here.
    if type(value) is not str and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise MalformedLine(BAD_FIELD, f"field {name!r} is {str(value)[:40]!r}; expected a number")
    try:
        number = kind(value)  # "" and garbage raise ValueError
    except (ValueError, OverflowError):
        raise MalformedLine(
            BAD_FIELD, f"field {name!r} is {str(value)[:40]!r}; expected a number"
        ) from None
    if not math.isfinite(number) or number < low:
        raise MalformedLine(
            BAD_FIELD,
            f"field {name!r} is {str(value)[:40]!r}; expected a finite number >= {low}",
        )
    return number


def _decode(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        pass
    try:  # the rare line orjson refuses: judged by the standard library, as it always was
        return json.loads(line)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        raise MalformedLine(NOT_JSON, f"the line is not JSON: {exc}") from None


def parse_line(line: bytes) -> AccessLogLine:
    """The record in one complete line (without its newline). Raises MalformedLine."""
    if len(line) > MAX_LINE_BYTES:
        raise MalformedLine(TOO_LONG, f"the line has {len(line)} bytes; at most {MAX_LINE_BYTES}")
    raw = _decode(line)
    if type(raw) is not dict:
        raise MalformedLine(NOT_OBJECT, f"the line is a JSON {type(raw).__name__}, not an object")
    get = raw.get
    try:  # nginx writes every field: one C call takes them all
        texts = list(_texts_of(raw))
    except KeyError:  # a line of an older log format, or not nginx's
        texts = [get(name, "") for name in _TEXT_FIELDS]
    request_id = get("request_id", "")
    # Only a \u escape can smuggle in a lone surrogate, so lines without one, whose values are
    # all strings (nginx writes nothing else there), need no check per field. The others are
    # decoded again by the standard library (orjson turns an integer past 64 bits into a
    # float, whose text differs) and checked field by field.
    if b"\\u" in line or set(map(type, texts)) != _STR_ONLY or type(request_id) is not str:
        raw = json.loads(line)
        get = raw.get
        texts = [_text(raw, name) for name in _TEXT_FIELDS]
        request_id = _text(raw, "request_id")
    if not _REQUEST_ID.fullmatch(request_id):
        raise MalformedLine(BAD_FIELD, f"request_id {request_id[:40]!r} is not 32 hex digits")
    status = _number(get("status"), "status", int, 100)
    if status > 599:
        raise MalformedLine(BAD_FIELD, f"status {status} is not an HTTP status")
    bytes_sent = _number(get("bytes") or "0", "bytes", int, 0)
    if bytes_sent > MAX_BODY_BYTES:
        raise MalformedLine(BAD_FIELD, f"bytes {bytes_sent} is more than an off_t holds")
    values = [
        _number(get("ts"), "ts", float, 0.0),
        status,
        bytes_sent,
        _number(get("request_time") or "0", "request_time", float, 0.0),
        request_id,
        *texts,
    ]
    # Every value is checked above, so the instance is filled without the frozen dataclass's
    # __init__ (a setattr per field: 4.5 against 2.1 us a line, at tens of thousands of lines
    # a second; benchmarks/README.md, "Access-log shipper").
    record = object.__new__(AccessLogLine)
    record.__dict__.update(zip(_FIELD_NAMES, values, strict=True))
    return record
