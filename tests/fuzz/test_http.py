"""Every endpoint of the running edge (ingest API mounted, as `streamer serve --ingest` runs it),
driven over a socket with random methods, paths, queries, headers and bodies built around
real tokens, ids and names so requests reach the handlers' depths.

The property: never a 5xx, never an error logged (an unhandled exception), and every 4xx is
JSON with an `error` code and a `message`.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.counting import SCALES, budget, tried
from tests.fuzz.strategies import EVENT_BODIES, HEADER_TEXT, JSON, SESSION_BODIES
from tests.security import forgery
from tests.security.table import genuine_bearers
from tests.security.world import World

# RFC 3986 pchar without '%': what a path segment may hold unescaped.
_PCHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@"
FUZZ_SEGMENT = (
    st.text(max_size=40).map(lambda t: quote(t, safe=""))
    | st.text(st.sampled_from(_PCHARS), max_size=40)
    | st.sampled_from(["..", ".", "%2e%2e", "%2F", "%00", "%ZZ", "%", "a%2Fb", "%C0%AF", ""])
)
QUERY_NAMES = ["CMCD", "t", "from", "to", "filename", "track_id", "metadata", "_HLS_pathway",
               "_HLS_throughput", "token", "track", "codecs", "variant", "muted"]  # fmt: skip
HEADER_NAMES = [
    "Authorization", "CMCD-Object", "CMCD-Request", "CMCD-Session", "CMCD-Status", "Range",
    "If-None-Match", "If-Range", "Accept-Encoding", "X-Request-Id", "Content-Type", "Origin",
    "Content-Encoding", "Cookie", "X-Forwarded-For",
]  # fmt: skip
# Methods aiohttp's HTTP parser knows (llhttp's table, less CONNECT's authority form). It
# answers any other with a text/plain 400 before the application sees the request; see
# docs/reliability.md.
METHODS = [
    "GET", "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "MKCOL",
    "COPY", "MOVE", "LOCK", "SEARCH", "REPORT", "PURGE", "QUERY", "LINK",
]  # fmt: skip
SF_LIKE = st.text(st.sampled_from('abcdefgmnorstuv0123456789=,;"?:-_ .*()'), max_size=60)


JOB_SLOTS = 4  # ingest job ids the requests may name


class Valid:
    """Real values from the running world: the fuzzer mixes them into every request."""

    def __init__(self, world: World) -> None:
        a = world.tracks["A"]
        self.tokens: dict[str, str] = {}
        self.session_ids: list[str] = []
        for tier in ("free", "premium"):
            token, doc = world.open_session(world.edge, a.track_id, tier)
            self.tokens[f"session-{tier}"] = token
            self.session_ids.append(doc["session_id"])
        bearers = genuine_bearers(world)
        self.tokens.update(bearers)
        self.tokens["forged"] = forgery.jwt_unsigned({"sub": "x", "aud": "streamer-edge"})
        self.key_ids = list(a.keys)
        self.renditions = list(a.renditions)
        self.files = ["init.mp4", "seg_00000.m4s", "seg_00003.m4s", "playlist.m3u8", "main.m3u8"]
        self.track_ids = [a.track_id, world.tracks["B"].track_id]
        # A fixed number of slots, filled by the jobs the fuzzing creates: the strategy must draw
        # the same kinds of values in every example (a list that grew made Hypothesis call the
        # strategy flaky), only the ids in the slots change.
        self.job_ids: list[str] = ["none"] * JOB_SLOTS
        self.jobs_seen = 0


def _mostly(draw: st.DrawFn, usual: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> Any:
    """Three times in four the usual value (so requests get deep), else another."""
    return draw(usual if draw(st.integers(0, 3)) else other)


def _encoded(draw: st.DrawFn, bodies: st.SearchStrategy[Any]) -> bytes:
    try:
        return json.dumps(draw(bodies)).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError):  # NaN keys and the like: still send something
        return b"{}"


@st.composite
def requests(draw: st.DrawFn, valid: Valid) -> tuple[str, str, list[tuple[str, str]], bytes | None]:
    def pick(values: list[str]) -> str:
        return str(_mostly(draw, st.sampled_from(values), FUZZ_SEGMENT))

    free, premium = valid.tokens["session-free"], valid.tokens["session-premium"]
    sessions = [free, premium]
    sid = draw(st.sampled_from([0, 1]))
    ingest_body = st.binary(max_size=300).map(lambda b: b"RIFF" + b)
    # (method, path, the token the route wants, its body)
    routes: list[tuple[str, Any, str | None, Any]] = [
        ("POST", lambda: "/v1/sessions", "listener-premium", SESSION_BODIES),
        ("GET", lambda: f"/v1/s/{pick(sessions)}/main.m3u8", None, None),
        ("GET", lambda: f"/v1/s/{pick(sessions)}/keys/{pick(valid.key_ids)}", None, None),
        ("GET", lambda: f"/v1/s/{pick(sessions)}/{pick(valid.renditions)}/playlist.m3u8", None,
         None),
        ("GET", lambda: f"/v1/s/{pick(sessions)}/{pick(valid.renditions)}/{pick(valid.files)}",
         None, None),
        ("GET", lambda: f"/v1/steer/{pick(sessions)}", None, None),
        ("GET", lambda: "/v1/tracks", "listener-free", None),
        ("POST", lambda: f"/v1/sessions/{pick([valid.session_ids[sid]])}/events",
         ("session-free", "session-premium")[sid], EVENT_BODIES),
        ("GET", lambda: f"/v1/sessions/{pick([valid.session_ids[sid]])}/qoe",
         ("session-free", "session-premium")[sid], None),
        ("GET", lambda: f"/v1/tracks/{pick(valid.track_ids)}/plays", "analytics", None),
        ("GET", lambda: draw(st.sampled_from(["/", "/player", "/static/hls.min.js", "/metrics",
                                              "/healthz", "/readyz"])), None, None),
        ("POST", lambda: "/v1/ingest", "ingest", ingest_body),
        ("GET", lambda: f"/v1/ingest/{pick(valid.job_ids)}", "ingest", None),
        ("GET", lambda: "/" + "/".join(draw(st.lists(FUZZ_SEGMENT, max_size=6))), None, None),
    ]  # fmt: skip
    method, path, wanted, bodies = draw(st.sampled_from(routes))
    method = _mostly(draw, st.just(method), st.sampled_from(METHODS))
    target = path()
    names = st.sampled_from(QUERY_NAMES) | FUZZ_SEGMENT
    query = draw(st.lists(st.tuples(names, FUZZ_SEGMENT | SF_LIKE.map(quote)), max_size=4))
    if query:
        target += "?" + "&".join(f"{name}={value}" for name, value in query)
    headers = []
    if wanted is not None and draw(st.integers(0, 3)):
        headers.append(("Authorization", f"Bearer {valid.tokens[wanted]}"))
    for name in draw(st.lists(st.sampled_from(HEADER_NAMES), max_size=5, unique=True)):
        if name == "Authorization":
            if headers and headers[0][0] == "Authorization":
                continue
            token = draw(st.sampled_from(sorted(valid.tokens.values())) | HEADER_TEXT)
            value = draw(st.sampled_from(["Bearer ", "bearer ", "", "Basic "])) + token
        elif name.startswith("CMCD"):
            value = draw(SF_LIKE)
        else:
            value = draw(HEADER_TEXT | st.sampled_from(["gzip", "bytes=0-10", "*", '"x"']))
        headers.append((name, value.strip()))
    body = None
    if bodies is not None:
        body = _mostly(draw, st.just(_encoded(draw, bodies)), st.binary(max_size=200))
    elif method in ("POST", "PUT", "PATCH") or not draw(st.integers(0, 4)):
        body = _encoded(draw, JSON)
    return method, target, headers, body


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not _unread_body_drain(record):
            self.records.append(record)


def _unread_body_drain(record: logging.LogRecord) -> bool:
    """aiohttp's own log of a body that does not decode (a GET carrying a broken gzip body)
    as it drains what the handler did not read, after the response went out. The request
    was answered; aiohttp logs it as "Unhandled exception". See docs/reliability.md."""
    exc = record.exc_info[1] if record.exc_info else None
    return record.name == "aiohttp.server" and isinstance(exc, web.RequestPayloadError)


@contextmanager
def logged_errors() -> Iterator[list[logging.LogRecord]]:
    handler = _Errors()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler.records
    finally:
        root.removeHandler(handler)


@pytest.mark.parametrize("scale", SCALES)
def test_every_endpoint(edge_world: World, scale: int) -> None:
    valid = Valid(edge_world)
    statuses: Counter[int] = Counter()

    @budget(300, scale)
    @given(st.data())
    def check(data: Any) -> None:
        method, target, headers, body = data.draw(requests(valid))
        tried("HTTP requests to every edge and ingest endpoint")
        with logged_errors() as errors:
            reply = edge_world.edge.request(method, target, headers, body)
        statuses[reply.status] += 1
        if reply.status == 202 and target.startswith("/v1/ingest"):
            valid.job_ids[valid.jobs_seen % JOB_SLOTS] = json.loads(reply.body)["job_id"]
            valid.jobs_seen += 1
        assert reply.status != 0, "the edge closed the connection without an answer"
        assert reply.status < 500, reply.body[:500]
        assert errors == [], [r.getMessage() for r in errors]
        if 400 <= reply.status < 500 and method != "HEAD":
            doc = json.loads(reply.body)
            assert isinstance(doc.get("error"), str) and doc["error"], doc
            assert isinstance(doc.get("message"), str) and doc["message"], doc

    check()
    print(f"\nstatuses: {dict(sorted(statuses.items()))}")


def _multipart(filename: str, data: bytes) -> tuple[str, bytes]:
    boundary = "fuzz-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    )
    body = head.encode("utf-8", "surrogatepass") + data + f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", body


@st.composite
def uploads(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]], bytes]:
    """An ingest upload: any filename, track id and metadata, raw or multipart, encoded or not."""
    text = st.text(max_size=60) | st.sampled_from(["../../x.wav", "a\\b.wav", ".", "x" * 300])
    query = [("filename", draw(text | st.just("song.wav")))]
    if draw(st.booleans()):
        query.append(("track_id", draw(text | st.just("ISRC1"))))
    if draw(st.booleans()):
        metadata = draw(JSON.map(lambda d: json.dumps(d)) | text | st.just("[" * 900 + "]" * 900))
        query.append(("metadata", metadata))
    target = "/v1/ingest?" + "&".join(
        f"{name}={quote(value.encode('utf-8', 'surrogatepass'), safe='')}" for name, value in query
    )
    data = b"RIFF" + draw(st.binary(max_size=300))
    headers: list[tuple[str, str]] = []
    if draw(st.booleans()):
        content_type, data = _multipart(query[0][1], data)
        headers.append(("Content-Type", content_type))
    encoding = draw(st.sampled_from([None, "gzip", "deflate", "identity", "x-unknown"]))
    if encoding is not None:
        headers.append(("Content-Encoding", encoding))
        if encoding == "gzip" and draw(st.booleans()):
            data = gzip.compress(data)
    return target, headers, data


@pytest.mark.parametrize("scale", SCALES)
def test_ingest_uploads(edge_world: World, scale: int) -> None:
    token = genuine_bearers(edge_world)["ingest"]
    statuses: Counter[int] = Counter()

    @budget(200, scale)
    @given(uploads())
    def check(upload: tuple[str, list[tuple[str, str]], bytes]) -> None:
        target, headers, body = upload
        tried("HTTP ingest uploads (query, multipart, encodings)")
        with logged_errors() as errors:
            reply = edge_world.edge.request(
                "POST", target, [("Authorization", f"Bearer {token}"), *headers], body
            )
        statuses[reply.status] += 1
        assert reply.status != 0 and reply.status < 500, reply.body[:500]
        assert errors == [], [r.getMessage() for r in errors]
        if reply.status >= 400:
            doc = json.loads(reply.body)
            assert doc["error"] and doc["message"], doc

    check()
    print(f"\nstatuses: {dict(sorted(statuses.items()))}")
