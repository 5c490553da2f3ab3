"""The nginx tier's access log: one JSON object per line, one line per request.

The log shipper parses this; the field names are a contract. nginx writes the line with
`log_format ... escape=json`, so every string is JSON-escaped and a missing value is "".

    field                type    what
    ts                   number  $msec: the request's end, unix seconds with ms (1700000000.123)
    status               int     HTTP status sent
    bytes                int     body bytes sent ($body_bytes_sent)
    request_time         number  seconds from first byte read to last byte sent (ms resolution)
    method               string  GET, HEAD, ...
    uri                  string  the decoded, normalised path with tokens replaced by "-":
                                 /v1/s/-/aac_160/seg_00001.m4s, /v1/s/-/main.m3u8,
                                 /v1/steer/-; never the query string
    route                string  "segment", "playlist" or "key" (served by nginx after the
                                 gate) or "edge" (proxied to Python)
    session_id           string  the verified session token's sid; "" unless nginx verified
                                 a session token (so "" on every proxied request)
    track_id             string  the token's trk, same condition
    version              string  the token's ver, same condition
    tier                 string  "free" or "premium", same condition
    rendition            string  the rendition in a segment URL that matched the strict form
    object               string  "init.mp4", "seg_NNNNN.m4s" or "playlist.m3u8", same
                                 condition; on route "key", the key id asked for
    cmcd_query           string  the CMCD query argument as sent: still percent-encoded
                                 (CTA-5004 query mode), "" when absent
    cmcd_object          string  the CMCD-Object request header, as sent
    cmcd_request         string  the CMCD-Request request header
    cmcd_session         string  the CMCD-Session request header
    cmcd_status          string  the CMCD-Status request header
    range                string  the Range request header, as sent
    request_id           string  the X-Request-Id sent back (the caller's if it is 8-64 of
                                 [A-Za-z0-9_.-], else nginx's $request_id); proxied requests
                                 pass it to the Python edge, which logs the same id
    user_agent           string  User-Agent
    remote_addr          string  the client address
    connection           int     nginx's connection serial number
    connection_requests  int     requests so far on that connection (1 for the first)
    key_tier             string  on route "key": the tier of the key asked for, once known

Each worker buffers its own lines (64 kB, flushed at least every second and on SIGUSR1), so the
file is in order per worker, not overall: order by `ts` if order matters. Lines are whole: a
worker writes only complete lines.

A key delivery is a line with route "key", a session_id and status 200 (the edge's own log
line for a key it serves says the same: session, track, version, key id, key tier).
A segment delivery is a line with route "segment", a session_id, and status 200 or 206. The
token never appears: not in `uri`, and no field carries the raw request line or the Referer.

Shards. One shipper process parses about 20k lines/s, less than two nginx workers serve, so
the tier can write the log as N files (`log_shards`): access.0.log ... access.{N-1}.log. Each
request goes to exactly one of them, chosen by `split_clients` (MurmurHash2) on the verified
session id, or on nginx's random $request_id for a request without one (refused, proxied).
Every line is in one file only, and all of a session's segment lines are in the same file:
one shipper sees a session's deliveries, so two shippers never decide its play at once, each
from half of them. Each file is shipped by its own shipper with its own position
(`streamer logship --log 'access.*.log'`).
"""

from __future__ import annotations

from pathlib import Path

LOG_FORMAT_NAME = "streamer_json"

# (field, nginx value, is_number); numbers are written bare, so they must never be empty.
FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("ts", "$msec", True),
    ("status", "$status", True),
    ("bytes", "$body_bytes_sent", True),
    ("request_time", "$request_time", True),
    ("method", "$request_method", False),
    ("uri", "$streamer_log_uri", False),
    ("route", "$streamer_route", False),
    ("session_id", "$streamer_session_id", False),
    ("track_id", "$streamer_track_id", False),
    ("version", "$streamer_version", False),
    ("tier", "$streamer_tier", False),
    ("rendition", "$streamer_rendition", False),
    ("object", "$streamer_object", False),
    ("cmcd_query", "$arg_CMCD", False),
    ("cmcd_object", "$http_cmcd_object", False),
    ("cmcd_request", "$http_cmcd_request", False),
    ("cmcd_session", "$http_cmcd_session", False),
    ("cmcd_status", "$http_cmcd_status", False),
    ("range", "$http_range", False),
    ("request_id", "$streamer_request_id", False),
    ("user_agent", "$http_user_agent", False),
    ("remote_addr", "$remote_addr", False),
    ("connection", "$connection", True),
    ("connection_requests", "$connection_requests", True),
    ("key_tier", "$streamer_key_tier", False),
)

FIELD_NAMES = tuple(name for name, _, _ in FIELDS)


def render_log_format() -> str:
    """The `log_format` directive (http context) that writes `FIELDS` as one JSON object."""
    parts = []
    for name, value, number in FIELDS:
        parts.append(f'"{name}":{value}' if number else f'"{name}":"{value}"')
    body = ",".join(parts)
    return f"log_format {LOG_FORMAT_NAME} escape=json '{{{body}}}';"


MAX_LOG_SHARDS = 64
SHARD_VARIABLE = "streamer_log_shard"


def shard_log_paths(log: Path, shards: int) -> tuple[Path, ...]:
    """The files of a log written as `shards` shards: access.log, or access.0.log, ..."""
    if not 1 <= shards <= MAX_LOG_SHARDS:
        raise ValueError(f"log shards must be 1 to {MAX_LOG_SHARDS}, got {shards}")
    if shards == 1:
        return (log,)
    return tuple(log.with_name(f"{log.stem}.{k}{log.suffix}") for k in range(shards))


def _split_percent(shards: int) -> str:
    # split_clients takes percentages with two decimals; the last shard takes the rest ("*").
    return f"{(10_000 // shards) / 100:.2f}%"


def render_access_logs(paths: tuple[Path, ...], options: str) -> list[str]:
    """The `access_log` directives (http context) writing every request to one of `paths`."""
    if len(paths) == 1:
        return [f"access_log {paths[0]} {LOG_FORMAT_NAME} {options};"]
    lines = [
        # Evaluated when the line is logged, after the gate verified the token and set the session.
        f"map $streamer_session_id ${SHARD_VARIABLE}_key {{",
        '    "" $request_id;',
        "    default $streamer_session_id;",
        "}",
        f'split_clients "${SHARD_VARIABLE}_key" ${SHARD_VARIABLE} {{',
    ]
    lines += [f"    {_split_percent(len(paths))} {k};" for k in range(len(paths) - 1)]
    lines += [f"    * {len(paths) - 1};", "}"]
    for k, path in enumerate(paths):
        lines += [
            f"map ${SHARD_VARIABLE} ${SHARD_VARIABLE}_{k} {{ {k} 1; default 0; }}",
            f"access_log {path} {LOG_FORMAT_NAME} {options} if=${SHARD_VARIABLE}_{k};",
        ]
    return lines
