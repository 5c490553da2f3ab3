"""Header and query values: Range, If-None-Match and If-Range, Accept-Encoding, the steering
reload's query and the plays API's days. Each parses or refuses with its own error; nothing
else escapes.

Structured fields (RFC 8941, what CMCD is written in) are held to http-sf on any text by
tests/telemetry/test_structured_fields.py, and CMCD has garbage properties in
tests/telemetry/test_cmcd.py; here CMCD is driven over HTTP in test_http.py.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.counting import SCALES, budget, tried
from tests.fuzz.strategies import HEADER_TEXT
from tests.fuzz.targets import (
    EdgeError,
    accepts_gzip,
    etag_matches,
    if_range_allows,
    parse_day_range,
    parse_range,
    parse_report,
)

_RANGE_TEXT = st.text(st.sampled_from("bytes=0123456789-, \t"), max_size=40) | HEADER_TEXT


@pytest.mark.parametrize("scale", SCALES)
def test_range_and_validators(scale: int) -> None:
    @budget(400, scale)
    @given(_RANGE_TEXT | st.none(), st.integers(0, 10**7), HEADER_TEXT | st.none())
    def check(header: str | None, size: int, validator: str | None) -> None:
        tried("Range, If-None-Match, If-Range")
        try:
            got = parse_range(header, size)
        except EdgeError as exc:
            assert exc.http_status == 416
        else:
            if got is not None:
                first, last = got
                assert 0 <= first <= last < size
        etag_matches(validator, '"abc"')
        if_range_allows(validator, '"abc"')

    check()


@pytest.mark.parametrize("scale", SCALES)
def test_accept_encoding(scale: int) -> None:
    @budget(300, scale)
    @given(st.text(st.sampled_from("gzipq=0.1;, *identitybr\t"), max_size=40) | HEADER_TEXT)
    def check(header: str) -> None:
        tried("Accept-Encoding")
        assert accepts_gzip(header) in (True, False)

    check()


@pytest.mark.parametrize("scale", SCALES)
def test_steering_reload_query(scale: int) -> None:
    numbers = st.text(st.sampled_from("0123456789.eE+-_naifINF x"), max_size=40)

    @budget(300, scale)
    @given(st.dictionaries(st.sampled_from(["_HLS_pathway", "_HLS_throughput", "x"]),
                           numbers | HEADER_TEXT))  # fmt: skip
    def check(query: dict[str, str]) -> None:
        tried("steering reload query")
        report = parse_report(query, frozenset({"edge", "cdn-a"}))
        assert (
            report.throughput_bps is None or report.throughput_bps >= 0
        )  # the edge keeps at least 1 kbit/s

    check()


@pytest.mark.parametrize("scale", SCALES)
def test_plays_days(scale: int) -> None:
    days = st.text(st.sampled_from("0123456789-T:WZ+ "), max_size=12) | HEADER_TEXT | st.none()

    @budget(300, scale)
    @given(days, days)
    def check(first: str | None, last: str | None) -> None:
        tried("plays ?from= and ?to=")
        try:
            parse_day_range(first, last)
        except EdgeError as exc:
            assert exc.http_status == 400 and str(exc)

    check()
