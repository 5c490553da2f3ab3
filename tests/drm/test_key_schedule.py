import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drm import (
    InvalidKeyId,
    KeyScheduleError,
    content_key_id,
    key_period,
    parse_content_key_id,
)

versions = st.from_regex(r"[A-Za-z0-9_.\-]{1,64}", fullmatch=True)
tiers = st.from_regex(r"[A-Za-z0-9_.]{1,64}", fullmatch=True)
periods = st.integers(min_value=0, max_value=10**12)


@pytest.mark.parametrize(
    ("index", "rotation", "period"),
    [(0, 1, 0), (5, 1, 5), (0, 10, 0), (9, 10, 0), (10, 10, 1), (25, 10, 2)],
)
def test_key_period(index: int, rotation: int, period: int) -> None:
    assert key_period(index, rotation) == period


@pytest.mark.parametrize(
    ("index", "rotation", "message"),
    [
        (-1, 10, "segment_index must be an integer >= 0, got -1"),
        (0, 0, "rotation_segments must be an integer >= 1, got 0"),
        (True, 10, "segment_index must be an integer >= 0, got True"),
    ],
)
def test_key_period_invalid(index: int, rotation: int, message: str) -> None:
    with pytest.raises(KeyScheduleError) as info:
        key_period(index, rotation)
    assert str(info.value) == message


def test_content_key_id_format() -> None:
    assert content_key_id("v3", "aac_160", 12) == "v3-aac_160-12"
    assert content_key_id("2024-05-01.1", "opus_96", 0) == "2024-05-01.1-opus_96-0"


@given(versions, tiers, periods)
def test_content_key_id_round_trip_and_safety(version: str, tier: str, period: int) -> None:
    key_id = content_key_id(version, tier, period)
    assert re.fullmatch(r"[A-Za-z0-9_.\-]+", key_id)
    assert parse_content_key_id(key_id) == (version, tier, period)


@pytest.mark.parametrize(
    ("version", "tier", "period"),
    [("", "aac", 0), ("v1", "", 0), ("v/1", "aac", 0), ("v1", "aac-160", 0), ("v1", "a c", 0)],
)
def test_content_key_id_invalid_parts(version: str, tier: str, period: int) -> None:
    with pytest.raises(InvalidKeyId):
        content_key_id(version, tier, period)


def test_content_key_id_invalid_period() -> None:
    with pytest.raises(KeyScheduleError, match="period must be an integer >= 0"):
        content_key_id("v1", "aac", -1)


@pytest.mark.parametrize("key_id", ["", "v1-aac", "v1-aac-01", "v1-aac--1", "v1-aac-x", "-aac-1"])
def test_parse_invalid(key_id: str) -> None:
    with pytest.raises(InvalidKeyId):
        parse_content_key_id(key_id)
