"""The access-log line parser, on good lines and hostile ones."""

from __future__ import annotations

import json

import pytest

from cdn_edge.logship.errors import MalformedLine
from cdn_edge.logship.log_line import (
    BAD_FIELD,
    MAX_LINE_BYTES,
    NOT_JSON,
    NOT_OBJECT,
    TOO_LONG,
    AccessLogLine,
    parse_line,
)
from tests.logship.builders import T0, fields, line


def parse(**overrides: object) -> AccessLogLine:
    return parse_line(line(**overrides).rstrip(b"\n"))


def test_a_segment_line_parses_into_typed_fields() -> None:
    parsed = parse(status="206", bytes="1024", request_time="0.015", range="bytes=0-1023")
    assert parsed.ts == pytest.approx(T0)
    assert (parsed.status, parsed.bytes_sent, parsed.request_time_s) == (206, 1024, 0.015)
    assert parsed.session_id == "s1" and parsed.range == "bytes=0-1023"
    assert parsed.object_key == "aac_160/seg_00000.m4s"


def test_unknown_fields_are_ignored_and_missing_text_fields_are_empty() -> None:
    raw = {k: v for k, v in fields().items() if k not in ("user_agent", "cmcd_query")}
    raw["upstream_cache_status"] = "HIT"
    parsed = parse_line(json.dumps(raw).encode())
    assert parsed.user_agent == "" and parsed.cmcd_query == ""


def test_numbers_sent_as_json_numbers_are_taken() -> None:
    parsed = parse_line(json.dumps(fields(ts=T0, status=200, bytes=12)).encode())
    assert (parsed.ts, parsed.status, parsed.bytes_sent) == (T0, 200, 12)


def test_a_refused_request_parses_with_empty_session_fields() -> None:
    parsed = parse(status="403", session_id="", track_id="", version="", rendition="", object="")
    assert parsed.status == 403 and parsed.session_id == ""


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", NOT_JSON),
        (b"{", NOT_JSON),
        (b'{"ts": "1"', NOT_JSON),  # torn
        (b"\xff\xfe garbage", NOT_JSON),
        (b"[1, 2]", NOT_OBJECT),
        (b"null", NOT_OBJECT),
        (b'"a string"', NOT_OBJECT),
        (json.dumps(fields(request_id="")).encode(), BAD_FIELD),
        (json.dumps(fields(request_id="../../etc/passwd")).encode(), BAD_FIELD),
        (json.dumps(fields(ts="")).encode(), BAD_FIELD),
        (json.dumps(fields(ts="NaN")).encode(), BAD_FIELD),
        (json.dumps(fields(ts="inf")).encode(), BAD_FIELD),
        (json.dumps(fields(ts="-5")).encode(), BAD_FIELD),
        (json.dumps(fields(ts="1e400")).encode(), BAD_FIELD),
        (json.dumps(fields(status="abc")).encode(), BAD_FIELD),
        (json.dumps(fields(status="999")).encode(), BAD_FIELD),
        (json.dumps(fields(status="99")).encode(), BAD_FIELD),
        (json.dumps(fields(status=True)).encode(), BAD_FIELD),
        (json.dumps(fields(bytes="-1")).encode(), BAD_FIELD),
        (json.dumps(fields(bytes="9" * 5000)).encode(), BAD_FIELD),
        (json.dumps(fields(session_id={"nested": "object"})).encode(), BAD_FIELD),
        (json.dumps(fields(cmcd_object=["list"])).encode(), BAD_FIELD),
        # A lone surrogate through a JSON escape: valid JSON, but no store can keep it.
        (json.dumps(fields(cmcd_session='sid="\ud800"')).encode(), BAD_FIELD),
        (b'{"pad": "' + b"x" * MAX_LINE_BYTES + b'"}', TOO_LONG),
    ],
)
def test_hostile_lines_raise_malformed_line_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedLine) as caught:
        parse_line(raw)
    assert caught.value.reason == reason


def test_empty_byte_count_and_request_time_read_as_zero() -> None:
    parsed = parse(bytes="", request_time="")
    assert (parsed.bytes_sent, parsed.request_time_s) == (0, 0.0)
