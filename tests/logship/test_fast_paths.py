"""The shipper's fast paths decode exactly as the reference decoders they stand in for."""

from __future__ import annotations

import dataclasses
import json
import math
from urllib.parse import quote, unquote_plus

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cdn_edge.logship.errors import MalformedLine
from cdn_edge.logship.line_telemetry import unquote_cmcd
from cdn_edge.logship.log_line import _TEXT_FIELDS, AccessLogLine, parse_line
from streamer.sessions import table_spec
from tests.logship.builders import fields

ESCAPY = st.text(alphabet=st.sampled_from('%+=,"/ 23CDFacdf5é\u20ac'), max_size=40)


@given(ESCAPY)
def test_the_cmcd_query_decodes_as_unquote_plus(text: str) -> None:
    assert unquote_cmcd(text) == unquote_plus(text)


@given(st.text(max_size=60))
def test_an_encoded_cmcd_query_decodes_as_unquote_plus(text: str) -> None:
    encoded = quote(text, safe="")
    assert unquote_cmcd(encoded) == unquote_plus(encoded)


@given(
    st.dictionaries(
        st.sampled_from(_TEXT_FIELDS),
        st.one_of(st.text(max_size=20), st.integers(), st.none(), st.booleans()),
        max_size=4,
    )
)
@example({"method": -(2**63) - 1})  # orjson: a float, whose text differs; json: exact
def test_text_fields_are_taken_as_the_standard_library_decodes_them_or_refused(
    overrides: dict[str, object],
) -> None:
    raw = json.dumps(fields(**overrides)).encode()  # lone surrogates as \\ud800 escapes
    expected = json.loads(raw)
    try:
        parsed = parse_line(raw)
    except MalformedLine:
        return
    for name in _TEXT_FIELDS:
        value = expected.get(name)
        assert getattr(parsed, name) == ("" if value is None else str(value))
        getattr(parsed, name).encode()  # text every store can keep


def test_lines_orjson_refuses_are_judged_by_the_standard_library() -> None:
    for bytes_sent in (2**64 + 1, 2**70 + 1):  # orjson: a float; json: exact; both refused
        with pytest.raises(MalformedLine):
            parse_line(json.dumps({**fields(), "bytes": bytes_sent}).encode())
    assert parse_line(json.dumps({**fields(), "bytes": 2**63 - 1}).encode()).bytes_sent > 0
    surrogate = json.dumps(fields(user_agent="\ud800")).encode()
    with pytest.raises(MalformedLine) as caught:
        parse_line(surrogate)
    assert caught.value.reason == "bad_field"


NUMBERS = st.one_of(
    st.integers(min_value=-5, max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet="0123456789.-e", max_size=8),
    st.booleans(),
    st.none(),
)


@given(
    st.dictionaries(st.sampled_from(("ts", "status", "bytes", "request_time")), NUMBERS),
    st.sets(st.sampled_from(_TEXT_FIELDS), max_size=3),
)
def test_a_parsed_line_is_the_record_the_dataclass_builds(
    numbers: dict[str, object], missing: set[str]
) -> None:
    """Numbers as nginx writes them or not, fields left out (an older log format): the record
    parse_line fills without __init__ equals the one the dataclass builds, or the line fails."""
    doc = {k: v for k, v in {**fields(), **numbers}.items() if k not in missing}
    try:
        raw = json.dumps(doc).encode()
    except ValueError:
        return
    try:
        parsed = parse_line(raw)
    except MalformedLine:
        return
    rebuilt = AccessLogLine(**{f.name: getattr(parsed, f.name) for f in dataclasses.fields(parsed)})
    assert parsed == rebuilt and hash(parsed) == hash(rebuilt)
    assert type(parsed.status) is int and 100 <= parsed.status <= 599
    assert type(parsed.ts) is float and math.isfinite(parsed.ts) and parsed.ts >= 0
    assert type(parsed.request_time_s) is float and math.isfinite(parsed.request_time_s)
    for name in missing:
        assert getattr(parsed, name) == ""


CMCD_LIKE = st.dictionaries(
    st.text(max_size=6),
    st.one_of(
        st.text(max_size=12),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.booleans(),
        st.none(),
        st.floats(allow_nan=False),
    ),
    max_size=6,
)


@given(CMCD_LIKE)
@example({"sid": "\ud800"})
@example({"pr": 1e16})
@example({"pr": 1e-07})
@example({"bl": 2**64})
def test_a_json_object_is_the_standard_librarys_canonical_text(value: dict[str, object]) -> None:
    assert table_spec._json_object(value) == json.dumps(
        value, sort_keys=True, separators=(",", ":")
    )


@given(st.lists(st.lists(st.one_of(st.text(max_size=8), st.integers(), st.none()), max_size=4)))
def test_json_rows_read_back_as_the_rows(rows: list[list[object]]) -> None:
    try:
        text = table_spec.json_rows(rows)
    except (ValueError, UnicodeEncodeError):
        return
    assert json.loads(text) == rows
