"""CMCD (CTA-5004) reading: hls.js's query and header forms, malformed input, and garbage."""

from __future__ import annotations

from urllib.parse import quote, unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.player import CmcdKeys, encode_cmcd
from cdn_edge.telemetry import structured_fields
from cdn_edge.telemetry.cmcd import (
    BAD_VALUE,
    DUPLICATE_KEY,
    SYNTAX,
    TOO_LONG,
    TOO_MANY_CUSTOM_KEYS,
    UNKNOWN_KEY,
    CustomValue,
    read_cmcd_keys,
)
from cdn_edge.telemetry.structured_fields import StructuredFieldError

REASONS = (TOO_LONG, SYNTAX, UNKNOWN_KEY, BAD_VALUE, DUPLICATE_KEY, TOO_MANY_CUSTOM_KEYS)
Reading = tuple[dict[str, CustomValue], tuple[str, ...]]


def parse_cmcd(text: str) -> Reading:
    """One field value's keys and problems, as the edge reads a `CMCD` query argument."""
    reading = read_cmcd_keys(text, {})
    assert reading is not None
    return reading


# The query argument from the CTA-5004 example as hls.js writes it (encodeURIComponent).
HLSJS_QUERY = (
    "bl%3D21300%2Cbr%3D3200%2Cbs%2Ccid%3D%22faec5fc2-ac30-11eabb37-0242ac130002%22%2Cd%3D4004"
    "%2Cdl%3D18500%2Cmtp%3D48100%2Cot%3Dv%2Csf%3Dh%2Csid%3D%226e2fb550-c457-11e9-bb97-"
    "0800200c9a66%22%2Cst%3Dv%2Ctb%3D6000"
)


def test_hlsjs_query_example() -> None:
    keys, problems = parse_cmcd(unquote(HLSJS_QUERY))
    assert problems == ()
    assert keys == {
        "br": 3200,
        "d": 4004,
        "ot": "v",
        "tb": 6000,
        "bl": 21300,
        "dl": 18500,
        "mtp": 48100,
        "cid": "faec5fc2-ac30-11eabb37-0242ac130002",
        "sf": "h",
        "sid": "6e2fb550-c457-11e9-bb97-0800200c9a66",
        "st": "v",
        "bs": True,
    }
    # hls.js sorts keys and writes true flags bare: rendering gives the same text back.
    sent: CmcdKeys = dict(keys)
    assert quote(encode_cmcd(sent), safe="") == HLSJS_QUERY


def test_hlsjs_header_mode_spreads_keys_over_four_headers() -> None:
    headers = {
        "CMCD-Object": "br=160,d=6000,ot=a,tb=256",
        "CMCD-Request": 'bl=12000,mtp=5400,nor="seg_00004.m4s",su',
        "CMCD-Session": 'cid="trk1",sf=h,sid="6e2fb550-c457-11e9-bb97-0800200c9a66",st=v',
        "CMCD-Status": "bs,rtp=1200",
    }
    reading = read_cmcd_keys(None, headers)
    assert reading is not None and reading[1] == ()
    assert reading[0] == {
        "br": 160,
        "d": 6000,
        "ot": "a",
        "tb": 256,
        "bl": 12000,
        "mtp": 5400,
        "nor": "seg_00004.m4s",
        "su": True,
        "cid": "trk1",
        "sf": "h",
        "sid": "6e2fb550-c457-11e9-bb97-0800200c9a66",
        "st": "v",
        "bs": True,
        "rtp": 1200,
    }


def test_hlsjs_playlist_request_and_defaults() -> None:
    # A playlist request: manifest object type, no bitrate; v=1 and pr=1 are left out.
    keys, problems = parse_cmcd('cid="trk1",ot=m,sf=h,sid="abc",st=v,su')
    assert problems == ()
    assert keys == {"cid": "trk1", "ot": "m", "sf": "h", "sid": "abc", "st": "v", "su": True}


def test_false_flags_are_left_out() -> None:
    assert parse_cmcd("su=?0,bs=?0,br=1") == ({"br": 1}, ())


def test_no_cmcd_is_none() -> None:
    assert read_cmcd_keys(None, {}) is None
    assert read_cmcd_keys(None, {"Content-Type": "x"}) is None


def test_query_and_headers_merge_first_wins() -> None:
    reading = read_cmcd_keys("br=96,ot=a", {"CMCD-Object": "br=160,d=6000"})
    assert reading == ({"br": 96, "ot": "a", "d": 6000}, (DUPLICATE_KEY,))


def test_custom_keys_and_decimals() -> None:
    keys, problems = parse_cmcd(
        'com.example-buffer=12,com.example-name="x",com.example-t=tok,pr=1.25'
    )
    assert problems == ()
    assert keys["pr"] == 1.25
    assert list(keys.items())[1:] == [
        ("com.example-buffer", 12),
        ("com.example-name", "x"),
        ("com.example-t", "tok"),
    ]


@pytest.mark.parametrize(
    ("text", "problems", "kept"),
    [
        ("br=3200,,d=4", (SYNTAX,), {}),  # the whole field is ignored (RFC 8941 4.2)
        ("BR=3200", (SYNTAX,), {}),  # keys are lowercase and case-sensitive
        ('cid="unterminated', (SYNTAX,), {}),
        ("br=3200 d=4", (SYNTAX,), {}),
        ("br=3200,foo=1", (UNKNOWN_KEY,), {"br": 3200}),
        ("br=-5,d=4004", (BAD_VALUE,), {"d": 4004}),
        ('br="3200",d=4004', (BAD_VALUE,), {"d": 4004}),
        ("br=3.5", (BAD_VALUE,), {}),
        ("ot=x,sf=h", (BAD_VALUE,), {"sf": "h"}),
        ('ot="a"', (BAD_VALUE,), {}),  # a token, not a string
        ("bs=1", (BAD_VALUE,), {}),
        ("sid=" + '"' + "x" * 65 + '"', (BAD_VALUE,), {}),
        ('nrr="abc"', (BAD_VALUE,), {}),
        ("v=0", (BAD_VALUE,), {}),
        ("br=(1),st=v", (BAD_VALUE,), {"st": "v"}),  # CMCD v2 inner lists are not v1
        ("br=1;x=2", (BAD_VALUE,), {}),
        ("d=1,d=2", (DUPLICATE_KEY,), {"d": 1}),
        ("br=" + "9" * 16, (SYNTAX,), {}),
        ("br=1" + ",x" * 3000, (TOO_LONG,), {}),
    ],
)
def test_malformed_cmcd_is_counted_and_ignored(
    text: str, problems: tuple[str, ...], kept: dict[str, object]
) -> None:
    assert parse_cmcd(text) == (kept, problems)


def test_too_many_custom_keys() -> None:
    text = ",".join(f"com.x-k{i}={i}" for i in range(20))
    keys, problems = parse_cmcd(text)
    assert len(keys) == 16
    assert problems == (TOO_MANY_CUSTOM_KEYS,) * 4


def test_one_bad_header_does_not_spoil_the_others() -> None:
    reading = read_cmcd_keys(None, {"CMCD-Object": "br=160,,", "CMCD-Session": 'sid="s"'})
    assert reading == ({"sid": "s"}, (SYNTAX,))


@given(st.text(max_size=300))
def test_garbage_never_raises(text: str) -> None:
    _, problems = parse_cmcd(text)
    assert set(problems) <= set(REASONS)


_CMCD_ALPHABET = st.sampled_from(list('abcdefghijklmnopqrstuvwxyz0123456789=,;"()?:-_.* \\/%'))


@given(st.text(_CMCD_ALPHABET, max_size=120))
def test_near_miss_garbage_never_raises(text: str) -> None:
    parse_cmcd(text)


@given(
    st.text(max_size=80) | st.none(),
    st.dictionaries(
        st.sampled_from(["CMCD-Object", "CMCD-Request", "CMCD-Session", "CMCD-Status", "X"]),
        st.text(max_size=80),
    ),
)
def test_garbage_requests_never_raise(query: str | None, headers: dict[str, str]) -> None:
    reading = read_cmcd_keys(query, headers)
    assert reading is None or set(reading[1]) <= set(REASONS)


_COUNT = st.integers(0, 10**9)
_ID = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=64)
_OPTIONAL = {
    "br": _COUNT,
    "d": _COUNT,
    "ot": st.sampled_from(["m", "a", "v", "av", "i", "c", "tt", "k", "o"]),
    "tb": _COUNT,
    "bl": _COUNT,
    "dl": _COUNT,
    "mtp": _COUNT,
    "nor": _ID,
    "nrr": st.sampled_from(["0-99", "100-", "-50"]),
    "su": st.just(True),
    "cid": _ID,
    "pr": st.sampled_from([0.5, 1.25, 2.0, 1.125]),
    "sf": st.sampled_from(["d", "h", "s", "o"]),
    "sid": _ID,
    "st": st.sampled_from(["v", "l"]),
    "v": st.integers(1, 3),
    "bs": st.just(True),
    "rtp": _COUNT,
}
cmcd_keys = st.fixed_dictionaries({}, optional=_OPTIONAL)


@given(cmcd_keys)
def test_what_hlsjs_sends_reads_back_whole(keys: dict[str, CustomValue]) -> None:
    # benchmarks.player.encode_cmcd writes CMCD as hls.js does: an independent writer.
    sent: CmcdKeys = dict(keys)
    assert parse_cmcd(encode_cmcd(sent)) == (keys, ())


# The shapes of member players send, and near misses the fast path must leave to the parser.
_MEMBER_PARTS = st.sampled_from(
    ["bl=21300", "br=160", "ot=a", 'sid="6e2fb550-c457"', "bs", "su=?0", "su=?1", "d=-4",
     "pr=1.25", 'nor="../seg%202.m4s"', "x-y=tok:en/1", 'cid="a,b=c"', "n=1;p", 'k="q\\"x"',
     "a=1234567890123456", "A=1", "k=", "=1", "k=(1 2)", "k=:aGk=:", " ", ""]
)  # fmt: skip


@given(st.lists(_MEMBER_PARTS, max_size=6), st.sampled_from([",", ", ", ",,", ";", ",\t"]))
def test_the_fast_dictionary_path_agrees_with_the_parser(parts: list[str], glue: str) -> None:
    text = glue.join(parts)
    try:
        expected: object = structured_fields._parse_dictionary(text)
    except StructuredFieldError as exc:
        expected = exc.reason
    try:
        got: object = structured_fields.parse_dictionary(text)
    except StructuredFieldError as exc:
        got = exc.reason
    assert got == expected
    if isinstance(got, list) and isinstance(expected, list):  # Token and str compare equal
        assert [type(m.value) for m in got] == [type(m.value) for m in expected]
