"""Our RFC 8941 dictionary parser agrees with http-sf, an implementation by the RFC's author.

docs/decisions/0006 keeps our parser for speed; this keeps it honest. Both parse the same
text; they must agree on refusing it, and otherwise on every key, value, type and parameter
(RFC 8941 section 4.2.2: a repeated key overwrites the earlier value in place).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import http_sf
from hypothesis import given
from hypothesis import strategies as st

from cdn_edge.telemetry.structured_fields import (
    StructuredFieldError,
    Token,
    parse_dictionary,
    serialize_bare_item,
)


def _ours(text: str) -> object:
    try:
        members = parse_dictionary(text)
    except StructuredFieldError:
        return "refused"
    merged: dict[str, object] = {}
    for member in members:
        merged[member.key] = (_bare(member.value), {k: _bare(v) for k, v in member.params})
    return merged


def _theirs(text: str) -> object:
    try:
        parsed: dict[str, Any] = http_sf.parse(text.encode(), tltype="dictionary")  # type: ignore[assignment]
    except http_sf.StructuredFieldError:
        return "refused"
    return {
        key: (_bare(value), {k: _bare(v) for k, v in params.items()})
        for key, (value, params) in parsed.items()
    }


def _bare(value: Any) -> object:
    """A value with its RFC 8941 type: tokens apart from strings, booleans from integers."""
    if isinstance(value, Token | http_sf.Token):
        return ("token", str(value))
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, float | Decimal):
        return ("decimal", float(value))
    if isinstance(value, tuple | list):  # an inner list: ((item, params), ...)
        items = [(i, dict(p) if not isinstance(p, dict) else p) for i, p in value]
        return [(_bare(i), {k: _bare(v) for k, v in p.items()}) for i, p in items]
    return value


# Member shapes players send and near misses (as the fast-path property in test_cmcd.py).
_PARTS = st.sampled_from(
    ["bl=21300", "br=160", "ot=a", 'sid="6e2fb550-c457"', "bs", "su=?0", "su=?1", "d=-4",
     "pr=1.25", 'nor="../seg%202.m4s"', "x-y=tok:en/1", 'cid="a,b=c"', "n=1;p", 'k="q\\"x"',
     "a=1234567890123456", "A=1", "k=", "=1", "k=(1 2)", "k=:aGk=:", "k=(a;b=1 ?0);c",
     "pr=12.3456", "d=1.", "k=*x", "k=\"\\u\"", " ", ""]
)  # fmt: skip
_ALPHABET = st.sampled_from(list('abcdefghijkz0123456789=,;"()?:-_.*/ \\'))


@given(st.lists(_PARTS, max_size=6), st.sampled_from([",", ", ", ",,", ";", ",\t", " "]))
def test_member_shapes_parse_as_http_sf_parses_them(parts: list[str], glue: str) -> None:
    text = glue.join(parts)
    assert _ours(text) == _theirs(text), text


@given(st.text(_ALPHABET, max_size=60))
def test_near_miss_text_parses_as_http_sf_parses_it(text: str) -> None:
    assert _ours(text) == _theirs(text), text


@given(
    st.one_of(
        st.integers(-(10**15) + 1, 10**15 - 1),
        st.booleans(),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
        st.from_regex(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]{0,10}", fullmatch=True).map(Token),
        st.decimals(-(10**11), 10**11, places=3, allow_nan=False).map(float),
        st.binary(max_size=12),
    )
)
def test_bare_items_serialize_as_http_sf_serializes_them(value: Any) -> None:
    theirs = http_sf.Token(str(value)) if isinstance(value, Token) else value
    assert serialize_bare_item(value) == http_sf.ser(theirs)
