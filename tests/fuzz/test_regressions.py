"""Inputs the fuzzers and the attack suite found to crash the edge or ingest, each now a 4xx
with a reason (or, in the worker, a clean decision). One test per fix, over HTTP on the
running edge where the input comes over HTTP."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

from tests.fuzz.targets import ProbeResult, check_declared_length
from tests.security import forgery
from tests.security.attempts import JSON, bearer, session_body
from tests.security.raw_http import Reply
from tests.security.world import World, issue_ingest_token

DEEP = 8000  # far past Python's recursion limit, well inside the body limits


def _refused_with_reason(reply: Reply, status: int = 400) -> dict[str, str]:
    assert reply.status == status, reply.body[:300]
    doc: dict[str, str] = json.loads(reply.body)
    assert doc["error"] and doc["message"]
    return doc


def test_deeply_nested_json_bodies_are_400(edge_world: World) -> None:
    w = edge_world
    track = w.tracks["A"].track_id
    listener = bearer(w.listener_token("free")) + JSON
    nested = b"[" * DEEP + b"]" * DEEP
    doc = _refused_with_reason(w.edge.request("POST", "/v1/sessions", list(listener), nested))
    assert doc["error"] == "invalid_field" and "nested" in doc["message"]

    token, opened = w.open_session(w.edge, track, "free")
    events = f"/v1/sessions/{opened['session_id']}/events"
    body = b'{"events": ' + nested + b"}"
    reply = w.edge.request("POST", events, list(bearer(token) + JSON), body)
    doc = _refused_with_reason(reply)
    assert doc["error"] == "invalid_field" and "nested" in doc["message"]
    # The session still works: a normal request after the refusal.
    ok = w.edge.request("POST", "/v1/sessions", list(listener), session_body(track))
    assert ok.status == 201


def _ingest(w: World, query: str) -> Reply:
    token = issue_ingest_token(w.secrets.platform_key, "label-a", 3600, time.time())
    return w.edge.request("POST", f"/v1/ingest?{query}", list(bearer(token)), b"RIFF" + b"\0" * 64)


def test_ingest_metadata_nested_too_deeply_is_400(edge_world: World) -> None:
    # The query holds at most 8190 bytes (aiohttp's request line): unescaped brackets, then.
    reply = _ingest(edge_world, "filename=a.wav&metadata=" + "[" * 3000 + "]" * 3000)
    doc = _refused_with_reason(reply)
    assert doc["error"] == "bad_request" and "nested" in doc["message"]


def test_ingest_filenames_with_control_characters_are_400(edge_world: World) -> None:
    # A NUL reached the worker, which could not open "master.wav\0" and failed the job with an
    # internal error; CR and LF would split the log line that names the file.
    for name in ("x.wav%00", "x%00.wav", "x.wav%0d%0aforged:%20line", "x%09.wav", "x%7f.wav"):
        doc = _refused_with_reason(_ingest(edge_world, f"filename={name}"))
        assert doc["error"] == "bad_filename", name
    assert _ingest(edge_world, "filename=fine%20name%20%C3%A9.wav").status == 202


def test_event_seconds_past_float_range_are_400(edge_world: World) -> None:
    # JSON integers have no size limit; float() of 10**400 overflows.
    w = edge_world
    token, opened = w.open_session(w.edge, w.tracks["A"].track_id, "free")
    events = f"/v1/sessions/{opened['session_id']}/events"
    for field in ("position_s", "from_s"):
        event = {"event_id": "e1", "type": "seek", "ts_ms": 1, "position_s": 1, "from_s": 1}
        body = json.dumps({"events": [{**event, field: 10**400}]}).encode()
        doc = _refused_with_reason(w.edge.request("POST", events, list(bearer(token) + JSON), body))
        assert doc["error"] == "invalid_field" and field in doc["message"]


def test_an_aiff_sound_chunk_without_samples_is_no_crash(tmp_path: Path) -> None:
    # SSND declares 8 bytes: its offset and block size, no samples. The check divided by the
    # zero bytes of audio it declared.
    data = b"FORM\x00\x00\x00\x00AIFFSSND\x00\x00\x00\x08"
    master = tmp_path / "empty.aiff"
    master.write_bytes(data)
    probe = ProbeResult("aiff", "pcm_s16be", 44_100, 2, 16, 1.0, len(data))
    check_declared_length(master, probe, "empty.aiff")  # nothing declared: nothing to check


def test_an_ingest_token_whose_exp_is_no_number_is_401(edge_world: World) -> None:
    # Signed with the platform key, so only the account service could send it; PyJWT leaves
    # exp unchecked when told to, and `[] <= now` raised TypeError.
    w = edge_world
    exps: tuple[object, ...] = ([], "tomorrow", None, True, {"s": 1})
    for exp in exps:
        claims = {"sub": "label-a", "aud": "streamer-ingest", "scope": "ingest", "exp": exp}
        token = forgery.jwt_hmac(claims, w.secrets.platform_key)
        for method, target in (("POST", "/v1/ingest?filename=a.wav"), ("GET", "/v1/ingest/x")):
            reply = w.edge.request(method, target, list(bearer(token)), b"RIFF" + b"\0" * 64)
            assert _refused_with_reason(reply, 401)["error"] == "invalid_token", exp


def test_a_bearer_token_whose_exp_is_nan_or_past_float_range_is_401(edge_world: World) -> None:
    # Signed with the platform key. Found by CI's fuzz run: `now - exp` raised OverflowError
    # for an exp of -10**300; and an exp of NaN compared false with now, so it never expired.
    w = edge_world
    track = w.tracks["A"].track_id
    for exp in (-(10**300), 10**300, float("nan"), float("inf")):
        listener = {"sub": "u1", "aud": "streamer-edge", "tier": "free", "region": "SE"}
        token = forgery.jwt_hmac({**listener, "exp": exp}, w.secrets.platform_key)
        reply = w.edge.request("POST", "/v1/sessions", [*bearer(token), *JSON], session_body(track))
        assert _refused_with_reason(reply, 401)["error"] == "unauthorized", exp
        ingest = {"sub": "label-a", "aud": "streamer-ingest", "scope": "ingest", "exp": exp}
        token = forgery.jwt_hmac(ingest, w.secrets.platform_key)
        reply = w.edge.request("GET", "/v1/ingest/x", list(bearer(token)), None)
        assert _refused_with_reason(reply, 401)["error"] == "invalid_token", exp


def test_a_bearer_token_with_a_byte_above_ascii_is_401(edge_world: World) -> None:
    # aiohttp hands such a header over with a surrogate escape, which PyJWT cannot encode: a
    # UnicodeEncodeError escaped the verifiers.
    w = edge_world
    a = w.tracks["A"].track_id
    for value in ("Bearer \x80", "Bearer abc\xff.def.ghi", "Bearer \xe9"):
        for method, target, body in (
            ("POST", "/v1/sessions", session_body(a)),
            ("GET", "/v1/tracks", None),
            ("GET", f"/v1/tracks/{a}/plays?from=2024-01-01&to=2024-01-02", None),
        ):
            reply = w.edge.request(method, target, [("Authorization", value), *JSON], body)
            assert _refused_with_reason(reply, 401)["error"] == "unauthorized", (value, target)


def test_an_ingest_token_with_a_byte_above_ascii_is_401(edge_world: World) -> None:
    for method, target in (("POST", "/v1/ingest?filename=a.wav"), ("GET", "/v1/ingest/x")):
        headers = [("Authorization", "Bearer \x80")]
        reply = edge_world.edge.request(method, target, headers, b"RIFF" + b"\0" * 64)
        assert _refused_with_reason(reply, 401)["error"] == "invalid_token", target


def _undecodable(w: World, target: str, authorization: str, encoding: str) -> Reply:
    headers = [("Authorization", f"Bearer {authorization}"), ("Content-Encoding", encoding)]
    return w.edge.request("POST", target, [*headers, *JSON], b"not gzip at all")


def test_a_body_that_does_not_decode_as_its_content_encoding_is_400(edge_world: World) -> None:
    w = edge_world
    token, opened = w.open_session(w.edge, w.tracks["A"].track_id, "free")
    for encoding in ("gzip", "deflate"):
        for target, authorization in (
            ("/v1/sessions", w.listener_token("free")),
            (f"/v1/sessions/{opened['session_id']}/events", token),
        ):
            doc = _refused_with_reason(_undecodable(w, target, authorization, encoding))
            assert doc["error"] == "bad_request" and encoding in doc["message"], doc


def test_an_upload_that_does_not_decode_as_its_content_encoding_is_400(edge_world: World) -> None:
    w = edge_world
    token = issue_ingest_token(w.secrets.platform_key, "label-a", 3600, time.time())
    for encoding in ("gzip", "deflate"):
        reply = _undecodable(w, "/v1/ingest?filename=a.wav", token, encoding)
        doc = _refused_with_reason(reply)
        assert doc["error"] == "bad_body" and encoding in doc["message"], doc


def test_a_gzip_encoded_upload_is_taken(edge_world: World) -> None:
    # Content-Length counts the encoded bytes; the body arrives inflated. The API compared the
    # two and refused every compressed upload as incomplete.
    w = edge_world
    token = issue_ingest_token(w.secrets.platform_key, "label-a", 3600, time.time())
    master = b"RIFF" + bytes(range(256)) * 8
    headers = [("Authorization", f"Bearer {token}"), ("Content-Encoding", "gzip")]
    reply = w.edge.request("POST", "/v1/ingest?filename=a.wav", headers, gzip.compress(master))
    assert reply.status == 202, reply.body


def test_a_listener_token_whose_tier_is_no_string_is_401(edge_world: World) -> None:
    # Signed with the platform key, so only the account service could send it: `[] in dict`
    # raised TypeError (unhashable).
    w = edge_world
    tiers: tuple[object, ...] = ([], {"x": 1}, ["premium"], None, 1)
    for tier in tiers:
        claims = {"sub": "u1", "aud": "streamer-edge", "exp": int(time.time()) + 60}
        token = forgery.jwt_hmac({**claims, "tier": tier, "region": "SE"}, w.secrets.platform_key)
        track = w.tracks["A"].track_id
        reply = w.edge.request("POST", "/v1/sessions", [*bearer(token), *JSON], session_body(track))
        assert _refused_with_reason(reply, 401)["error"] == "unauthorized", tier
