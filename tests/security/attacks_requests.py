"""Requests bent out of shape: traversal and encoded separators in every path parameter,
oversized headers, paths and bodies, and other methods."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

from tests.security.attempts import (
    JSON,
    PLAYS_QUERY,
    Attempt,
    Context,
    bearer,
    event_body,
    fetch,
    refused,
    session_body,
)

# Payloads for one path parameter: dot segments, encoded and double-encoded separators,
# backslashes, NUL, overlong UTF-8, IIS-style %u, CRLF, and malformed escapes.
TRAVERSALS = (
    "..", ".", "...", "%2e%2e", "%2E%2E", ".%2e", "%2e.", "%2e", "..%2f", "..%2F", "%2f", "%2F",
    "%2f%2f", "..%2f..%2f..%2f..", "%252f", "%252e%252e", "%252e%252e%252f",
    "%25252e%25252e%25252f", "..%5c", "%5c", "..%5C..%5C", "\\", "..\\..\\", "%00", "..%00",
    "%2500", "x%00.m4s", "..;", "..%3b", ";", "%c0%ae%c0%ae", "%c0%af", "%e0%80%af",
    "..%c0%af", "..%c1%9c", "%u002e%u002e", "%uff0e%uff0e", "%ef%bc%8e%ef%bc%8e", "....//",
    "..//", "..././", "%0d%0aX-Injected:%201", "%20", "%09", "~", "*", "%", "%%", "%zz",
)  # fmt: skip
CLIMBS = ("../", "..%2f", "..%2F", "%2e%2e/", "%2e%2e%2f", "..%252f", "..\\", "..%5c", "..;/")
# What a climb aims at, from the data directory: secrets, nginx's copy of the playback keys,
# the canaries, and a premium object reached from a free rendition's directory.
GOALS = (
    "secrets/token_secret",
    "secrets/kek.json",
    "nginx/conf/streamer.json",
    "canary.bin",
    "objects/tracks/canary.bin",
    "objects/tracks/{premium}",
)
CLIMB_DEPTHS = (4, 5, 6, 8)  # an object's directory is five below the data directory


def _climbs(premium_object: str) -> Iterator[str]:
    for climb in CLIMBS:
        sep = climb[-1] if climb.endswith(("/", "\\")) else climb[-3:]
        for depth in CLIMB_DEPTHS:
            for goal in GOALS:
                yield climb * depth + goal.format(premium=premium_object).replace("/", sep)
    yield "/etc/passwd"
    yield "%2fetc%2fpasswd"


def traversal(ctx: Context) -> Iterator[Attempt]:
    """Every payload in every path parameter of every route, with a valid token elsewhere."""
    free = ctx.sessions["free-A"]
    who = free.principal
    a = ctx.track("A")
    free_kid = next(k for k, t in a.keys.items() if t == "free")
    payloads = [*TRAVERSALS, *_climbs(f"{a.track_id}/{a.version}/flac/seg_00000.m4s")]
    listener = bearer(free.token) + JSON
    analytics = bearer(ctx.bearer["analytics"])
    ingest = bearer(ctx.bearer["ingest"])
    for p in payloads:
        for param, target in (
            ("token", f"/v1/s/{p}/aac_96/seg_00000.m4s"),
            ("token", f"/v1/s/{free.token}{p}/aac_96/seg_00000.m4s"),
            ("token", f"/v1/s/{p}/keys/{free_kid}"),
            ("token", f"/v1/s/{p}/main.m3u8"),
            ("rendition", f"/v1/s/{free.token}/{p}/seg_00000.m4s"),
            ("rendition", f"/v1/s/{free.token}/aac_96{p}/init.mp4"),
            ("rendition", f"/v1/s/{free.token}/{p}/playlist.m3u8"),
            ("file", f"/v1/s/{free.token}/aac_96/{p}"),
            ("file", f"/v1/s/{free.token}/aac_96/seg_00000.m4s{p}"),
            ("key id", f"/v1/s/{free.token}/keys/{p}"),
            ("key id", f"/v1/s/{free.token}/keys/{free_kid}{p}"),
        ):
            yield fetch("traversal", f"{param} {p[:40]}", target, who)
        yield refused("traversal", f"steering token {p[:40]}", "GET", f"/v1/steer/{p}")
        yield refused(
            "traversal",
            f"session id {p[:40]}",
            "POST",
            f"/v1/sessions/{p}/events",
            listener,
            event_body(),
        )
        yield refused(
            "traversal", f"session id {p[:40]}", "GET", f"/v1/sessions/{p}/qoe", bearer(free.token)
        )
        yield refused(
            "traversal",
            f"track id {p[:40]}",
            "GET",
            f"/v1/tracks/{p}/plays?{PLAYS_QUERY}",
            analytics,
        )
        yield refused("traversal", f"job id {p[:40]}", "GET", f"/v1/ingest/{p}", ingest)
    # Unencoded dot segments, doubled slashes, case, old routes, absolute forms.
    for target in (
        f"/v1/s/{free.token}/aac_96/../flac/seg_00000.m4s",
        f"/v1/s/{free.token}/aac_96/./../flac/init.mp4",
        f"/v1/s/{free.token}//flac/seg_00000.m4s",
        f"/v1/s/{free.token}/aac_96//../flac/playlist.m3u8",
        f"/v1/s/{free.token}/keys/../flac/seg_00000.m4s",
        f"/v1/s/{free.token}/aac_96/seg_00000.m4s/../../flac/seg_00000.m4s",
        f"//v1/s/{free.token}/flac/seg_00000.m4s",
        f"/v1/s/{free.token}/flac/seg_00000.m4s/.",
        f"/v1/s/{free.token}/FLAC/seg_00000.m4s",
        f"/V1/S/{free.token}/flac/seg_00000.m4s",
        f"/v1/seg/{free.token}/flac/seg_00000.m4s",
        f"/v1/seg/{a.track_id}/{a.version}/flac/seg_00000.m4s",
        f"http://127.0.0.1/v1/s/{free.token}/flac/seg_00000.m4s",
        f"/v1/s/{free.token}/aac_96/seg_00000.m4s?/../../flac/seg_00000.m4s",
        f"/v1/s/{free.token}/aac_96/seg_00000.m4s#/../../flac/seg_00000.m4s",
        f"/v1/s/{free.token}/aac_96/seg_00000.m4s;/../../flac/seg_00000.m4s",
    ):
        yield fetch("traversal", f"raw {target[-40:]}", target, who)
    # A raw NUL, CR and bytes above ASCII: most servers refuse the request line itself.
    for raw in (b"\x00", b"\xff", b"\xc0\xae\xc0\xae", b"\r"):
        raw_target = f"/v1/s/{free.token}/aac_96/".encode() + raw + b"/../flac/seg_00000.m4s"
        yield fetch("traversal", f"raw byte {raw!r}", raw_target, who)


def _chunked(body: bytes, size: int = 64 * 1024) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def oversized(ctx: Context) -> Iterator[Attempt]:
    """Oversized headers, paths and bodies, declared and streamed, plain and compressed."""
    free = ctx.sessions["free-A"]
    who = free.principal
    premium_seg = f"/v1/s/{free.token}/flac/seg_00000.m4s"
    free_seg = f"/v1/s/{free.token}/aac_96/seg_00000.m4s"
    for size in (8 * 1024, 16 * 1024, 64 * 1024, 1024 * 1024):
        for target in (premium_seg, free_seg):
            yield fetch("oversized", f"{size} B header", target, who, (("X-Pad", "a" * size),))
        yield refused(
            "oversized",
            f"{size} B bearer",
            "POST",
            "/v1/sessions",
            (("Authorization", "Bearer " + "A" * size), *JSON),
            session_body(ctx.track("A").track_id),
        )
        yield fetch(
            "oversized", f"{size} B cookie", premium_seg, who, (("Cookie", "s=" + "b" * size),)
        )
    for count in (100, 1000, 10_000):
        many = tuple((f"X-H{i}", "v" * 50) for i in range(count))
        yield fetch("oversized", f"{count} headers", premium_seg, who, many)
    for size in (3000, 10_000, 100_000):
        long = "A" * size
        for target in (
            f"/v1/s/{long}/flac/seg_00000.m4s",
            f"/v1/s/{free.token}/{long}/seg_00000.m4s",
            f"/v1/s/{free.token}/aac_96/seg_{'0' * size}.m4s",
            f"/v1/s/{free.token}/keys/{long}",
            f"/v1/steer/{long}",
            f"{premium_seg}?CMCD={long}",
        ):
            yield fetch("oversized", f"{size} B path {target[:24]}", target, who)
    for label, value in (
        ("long range", "bytes=0-" + "9" * 5000),
        ("many ranges", "bytes=" + ",".join(["0-1"] * 2000)),
        ("huge range", "bytes=0-99999999999999999999"),
        ("huge suffix range", "bytes=-99999999999999999999"),
    ):
        for target in (premium_seg, free_seg):
            yield fetch("oversized", label, target, who, (("Range", value),))
    yield from _oversized_bodies(ctx)


def _oversized_bodies(ctx: Context) -> Iterator[Attempt]:
    free = ctx.sessions["free-A"]
    listener = bearer(ctx.bearer["listener-free"]) + JSON
    session = bearer(free.token) + JSON
    events = f"/v1/sessions/{free.session_id}/events"
    good = session_body(ctx.track("A").track_id)
    bomb = gzip.compress(b"[" * (8 * 1024 * 1024))
    for label, target, headers, body in (
        ("session body 17 KB", "/v1/sessions", listener,
         good[:-1] + b', "pad": "' + b"x" * 17_000 + b'"}'),
        ("session body 1 MB", "/v1/sessions", listener, b" " * 1024 * 1024),
        ("session body 1 MB chunked", "/v1/sessions",
         (*listener, ("Transfer-Encoding", "chunked")), _chunked(b" " * 1024 * 1024)),
        ("session body declared 10 GB", "/v1/sessions",
         (*listener, ("Content-Length", str(10 * 1024**3))), b"{}"),
        ("session body gzip bomb", "/v1/sessions", (*listener, ("Content-Encoding", "gzip")),
         bomb),
        ("session body nested 8000 deep", "/v1/sessions", listener, b"[" * 8000 + b"]" * 8000),
        ("events body 70 KB", events, session, b'{"events": [' + b"{}," * 23_000 + b"{}]}"),
        ("events body 10 MB", events, session, b" " * 10 * 1024 * 1024),
        ("events 600", events, session, json.dumps({"events": [{}] * 600}).encode()),
        ("events gzip bomb", events, (*session, ("Content-Encoding", "gzip")), bomb),
        ("events nested 30000 deep", events, session,
         b'{"events": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"),
    ):  # fmt: skip
        yield fetch("oversized", label, target, free.principal, headers, "POST", body)
    ingest = bearer(ctx.bearer["ingest"])
    over = ctx.world.settings.max_upload_bytes + 1
    upload = "/v1/ingest?filename=big.wav"
    for label, target, headers, body in (
        ("upload over the limit", upload, ingest, b"\0" * over),
        ("upload over the limit, chunked", upload, (*ingest, ("Transfer-Encoding", "chunked")),
         _chunked(b"\0" * over)),
        ("upload declared 10 GB", upload, (*ingest, ("Content-Length", str(10 * 1024**3))),
         b"\0" * 1024),
        ("upload gzip bomb", upload, (*ingest, ("Content-Encoding", "gzip")),
         gzip.compress(b"\0" * (64 * over))),
        ("upload metadata query of 60 KB", "/v1/ingest?filename=a.wav&metadata=" + "%7B" * 20_000,
         ingest, b"\0" * 64),
        ("upload metadata nested 3000 deep (the request line holds 8 KB)",
         "/v1/ingest?filename=a.wav&metadata=" + "[" * 3000 + "]" * 3000, ingest, b"\0" * 64),
    ):  # fmt: skip
        yield fetch("oversized", label, target, headers=headers, method="POST", body=body)


def methods(ctx: Context) -> Iterator[Attempt]:
    """Other methods on media URLs, entitled or not, with bodies, and method overrides."""
    free = ctx.sessions["free-A"]
    a = ctx.track("A")
    premium_kid = next(k for k, t in a.keys.items() if t == "premium")
    for target in (
        f"/v1/s/{free.token}/flac/seg_00000.m4s",
        f"/v1/s/{free.token}/flac/playlist.m3u8",
        f"/v1/s/{free.token}/keys/{premium_kid}",
        f"/v1/s/{free.token}/aac_96/seg_00000.m4s",
    ):
        where = target.split("/", 4)[-1]
        for method in ("POST", "PUT", "DELETE", "PATCH", "TRACE", "PROPFIND", "get", "FOO"):
            yield fetch("methods", f"{method} {where}", target, free.principal, (), method, b"x")
        for header in ("X-HTTP-Method-Override", "X-Method-Override"):
            yield fetch(
                "methods",
                f"{header} {where}",
                target,
                free.principal,
                ((header, "GET"),),
                "POST",
                b"",
            )
