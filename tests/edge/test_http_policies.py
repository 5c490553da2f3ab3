"""Pure HTTP policies: Range, validators, gzip negotiation, token buckets."""

from __future__ import annotations

import gzip

import pytest

from cdn_edge.errors import RangeNotSatisfiable
from cdn_edge.policy.rate_limit import TokenBuckets, retry_after_header
from cdn_edge.web.compression import accepts_gzip, gzip_bytes
from cdn_edge.web.ranges import etag_matches, if_range_allows, parse_range
from tests.edge.conftest import ManualClock


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("bytes=0-99", (0, 99)),
        ("bytes=0-", (0, 999)),
        ("bytes=500-2000", (500, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=999-999", (999, 999)),
        ("Bytes= 10-20 ", (10, 20)),
        ("bytes=20-10", None),  # invalid: ignored
        ("bytes=0-1,5-6", None),  # several ranges: whole body
        ("items=0-1", None),
        ("bytes=abc", None),
        ("bytes=-", None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize(
    ("header", "size"),
    [("bytes=1000-", 1000), ("bytes=-0", 1000), ("bytes=0-", 0), ("bytes=5000-6000", 1000)],
)
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as info:
        parse_range(header, size)
    assert info.value.http_status == 416
    assert info.value.headers() == {"Content-Range": f"bytes */{size}"}


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ("*", True),
        ('"abcd"', False),
    ],
)
def test_etag_matches(header: str | None, matches: bool) -> None:
    assert etag_matches(header, '"abc"') is matches


def test_if_range() -> None:
    assert if_range_allows(None, '"a"')
    assert if_range_allows('"a"', '"a"')
    assert not if_range_allows('"b"', '"a"')
    assert not if_range_allows("Wed, 21 Oct 2015 07:28:00 GMT", '"a"')


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.8", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("*", True),
        ("*;q=0", False),
        ("gzip;q=0, *", False),
        ("*;q=0, gzip", True),
        ("x-gzip", True),
    ],
)
def test_accepts_gzip(header: str | None, ok: bool) -> None:
    assert accepts_gzip(header) is ok


def test_gzip_round_trips_deterministically() -> None:
    data = b"#EXTM3U\n" * 100
    assert gzip.decompress(gzip_bytes(data)) == data
    assert gzip_bytes(data) == gzip_bytes(data)


def test_token_bucket() -> None:
    clock = ManualClock(0.0)
    buckets = TokenBuckets(3, 0.5, clock)
    assert [buckets.take("s") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("s") == pytest.approx(2.0)
    assert buckets.take("other") == 0.0  # per key
    clock.advance(2.0)
    assert buckets.take("s") == 0.0
    assert buckets.take("s") > 0
    clock.advance(100.0)  # refills to capacity, not beyond
    assert [buckets.take("s") for _ in range(4)][-1] > 0


def test_token_bucket_takes_many_all_or_none() -> None:
    clock = ManualClock(0.0)
    buckets = TokenBuckets(10, 2.0, clock)
    assert buckets.take("s", 8) == 0.0
    assert buckets.take("s", 5) == pytest.approx(1.5)  # 3 missing at 2 a second; none taken
    assert buckets.take("s", 2) == 0.0
    with pytest.raises(ValueError, match="cannot take 11 tokens from a bucket of 10"):
        buckets.take("s", 11)  # more than a full bucket could ever grant


def test_token_bucket_table_is_bounded() -> None:
    buckets = TokenBuckets(1, 1, ManualClock(0.0), max_tracked=2)
    for key in "abc":
        buckets.take(key)
    assert buckets.take("a") == 0.0  # forgotten, so full again
    assert buckets.take("c") > 0


@pytest.mark.parametrize(("wait", "header"), [(0.01, 1), (1.0, 1), (1.2, 2), (30.0, 30)])
def test_retry_after_rounds_up(wait: float, header: int) -> None:
    assert retry_after_header(wait) == header
