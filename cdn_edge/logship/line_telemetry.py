"""What one access-log line means for the session store: a CMCD sample and a delivery.

Pure: the segment's place in its track (start and duration, from the track record) is passed
in. The items mean what the Python edge's `TelemetryCapture` records for the same request:

- a CMCD sample for any request of a verified session that carried CMCD keys, whatever its
  status (the edge samples after the handler, refusals included);
- a segment delivery for a media segment served (200, or 206 for a range) to a session;
  init segments and anything the track record does not time are not deliveries.

Ids and times come from the line, never from a clock or a counter: shipping a line again
builds equal items, and every store keeps the first copy of an item (CMCD by session and
sample id = nginx's $request_id, deliveries by session, name and time), so a replay after a
crash writes nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_plus

from cdn_edge.logship.errors import MalformedLine
from cdn_edge.logship.log_line import BAD_FIELD, AccessLogLine
from cdn_edge.telemetry.cmcd import read_cmcd_keys
from streamer.telemetry.model import CmcdSample, ObjectRoute, SegmentDelivery

MAX_OBJECT_CHARS = 256  # as the edge keeps CMCD object names
DELIVERED_STATUSES = frozenset({200, 206})  # the edge records a delivery only with the bytes
Timing = tuple[float, float]  # (start, duration) of a media segment in seconds
# What encodeURIComponent (hls.js) escapes in a CMCD dictionary: '=', ',', '"', '/', ' '.
# Each decodes to a character that is not '%', so replacing them one after another decodes
# exactly as unquote_plus does, several times faster, when no '%' is left; anything else
# (%25, '+', lower-case hex, UTF-8 escapes) goes through unquote_plus.
_CMCD_ESCAPES = (("%3D", "="), ("%2C", ","), ("%22", '"'), ("%2F", "/"), ("%20", " "))


@dataclass(frozen=True)
class LineTelemetry:
    """The items one line gives, and the CMCD problems met (cdn_edge.telemetry.cmcd's reasons)."""

    cmcd: CmcdSample | None = None
    delivery: SegmentDelivery | None = None
    cmcd_problems: tuple[str, ...] = ()


def is_verified(line: AccessLogLine) -> bool:
    """Whether nginx verified the request's token (it logs the session only then)."""
    return bool(line.session_id)


def wants_timing(line: AccessLogLine) -> bool:
    """Whether the line may be a delivery, so the caller should look up its segment's timing."""
    return (
        is_verified(line)
        and line.status in DELIVERED_STATUSES
        and bool(line.track_id and line.version and line.rendition and line.object)
    )


def unix_ms(ts: float) -> int:
    """$msec (seconds with three decimals) as whole milliseconds, without float truncation."""
    return round(ts * 1000)


def _route(line: AccessLogLine) -> ObjectRoute:
    if line.route == "key":
        return "key"
    return "playlist" if line.object.endswith(".m3u8") else "segment"


def _object(line: AccessLogLine) -> str:
    """As the edge names it: a media playlist by its rendition, a key by its id, a segment by
    its key."""
    if not line.object:
        return "-"
    route = _route(line)
    if route == "key":
        return line.object[:MAX_OBJECT_CHARS]
    name = line.rendition if route == "playlist" else line.object_key
    return name[:MAX_OBJECT_CHARS]


def is_key_delivery(line: AccessLogLine) -> bool:
    """Whether the gate handed a content key to a session (the edge's log line of a key it
    served says the same)."""
    return line.route == "key" and line.status == 200 and is_verified(line)


def unquote_cmcd(query: str) -> str:
    """The CMCD query argument decoded as aiohttp decodes a query ('+' is a space)."""
    if "+" in query:
        return unquote_plus(query)
    decoded = query
    for escape, char in _CMCD_ESCAPES:
        decoded = decoded.replace(escape, char)
    return decoded if "%" not in decoded else unquote_plus(query)


def _cmcd_headers(line: AccessLogLine) -> dict[str, str]:
    # nginx logs "" for an absent header; a present but empty one says nothing either.
    pairs = (
        ("CMCD-Object", line.cmcd_object),
        ("CMCD-Request", line.cmcd_request),
        ("CMCD-Session", line.cmcd_session),
        ("CMCD-Status", line.cmcd_status),
    )
    return {name: value for name, value in pairs if value}


def line_telemetry(line: AccessLogLine, timing: Timing | None) -> LineTelemetry:
    """The items of a line; `timing` is its segment's, None if not a timed media segment.

    Raises MalformedLine when the line's names cannot be stored (a session id with spaces).
    """
    if not is_verified(line):
        return LineTelemetry()
    try:
        return _items(line, timing)
    except ValueError as exc:  # the items' own checks (streamer.telemetry.model)
        raise MalformedLine(BAD_FIELD, f"request {line.request_id}: {exc}") from None


def _items(line: AccessLogLine, timing: Timing | None) -> LineTelemetry:
    at_ms = unix_ms(line.ts)
    sample = None
    problems: tuple[str, ...] = ()
    # aiohttp's query decoding, which the edge reads CMCD through: '+' is a space.
    query = unquote_cmcd(line.cmcd_query) if line.cmcd_query else None
    read = read_cmcd_keys(query, _cmcd_headers(line))
    if read is not None:
        keys, problems = read
        if keys:
            sample = CmcdSample(
                session_id=line.session_id,
                sample_id=line.request_id,
                received_ms=at_ms,
                route=_route(line),
                object=_object(line),
                status=line.status,
                keys=keys,
            )
    delivery = None
    if timing is not None and wants_timing(line):
        delivery = SegmentDelivery(
            session_id=line.session_id,
            track_id=line.track_id,
            version=line.version,
            rendition=line.rendition,
            name=line.object_key,
            start_s=timing[0],
            duration_s=timing[1],
            delivered_ms=at_ms,
        )
    return LineTelemetry(sample, delivery, problems)
