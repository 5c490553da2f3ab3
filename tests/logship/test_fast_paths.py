"""The shipper's fast paths decode exactly as the reference decoders they stand in for."""

from __future__ import annotations

import json
from urllib.parse import quote, unquote_plus

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from cdn_edge.logship.errors import MalformedLine
from cdn_edge.logship.line_telemetry import unquote_cmcd
from cdn_edge.logship.log_line import _TEXT_FIELDS, parse_line
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
