"""The royalty play policy: both kinds of evidence, exactly once, on the right day."""

from __future__ import annotations

import random
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamer.plays import (
    OFFLINE_WINDOW_S,
    covered_seconds,
    decide_play,
    offline_refusal,
    utc_day,
)
from streamer.telemetry.model import PlayClaim
from tests.telemetry.builders import T0_MS, deliveries, event, listening

DAY0 = date(2023, 11, 14)


def test_thirty_seconds_of_both_evidence_is_a_play() -> None:
    claim = decide_play("s1", "trk1", listening(30), deliveries(5))
    assert claim == PlayClaim("s1", "trk1", DAY0, T0_MS + 30_000)


def test_events_alone_are_not_enough() -> None:
    assert decide_play("s1", "trk1", listening(60), deliveries(4)) is None  # 24 s delivered


def test_segments_alone_are_not_enough() -> None:
    assert decide_play("s1", "trk1", listening(20), deliveries(8)) is None


def test_seeking_past_the_threshold_is_not_playing_it() -> None:
    events = [*listening(10), event("seek", 11, 40, from_s=11), event("heartbeat", 20, 49)]
    assert decide_play("s1", "trk1", events, deliveries(10)) is None  # 11 + 9 = 20 s


def test_switching_renditions_still_covers_the_timeline() -> None:
    low, high = deliveries(3), deliveries(6, rendition="aac_160")[3:]
    assert covered_seconds([*low, *high]) == 36
    assert decide_play("s1", "trk1", listening(40), [*low, *high]) is not None


def test_overlapping_deliveries_count_once() -> None:
    assert covered_seconds(deliveries(5) + deliveries(5, rendition="opus_96")) == 30
    assert covered_seconds([]) == 0


def test_offline_play_is_counted_at_its_original_time() -> None:
    original = T0_MS - 3 * 86_400_000  # three days before it was reported
    events = [
        event("play", 0, 0, offline=True, client_ms=original, received_ms=T0_MS),
        event("heartbeat", 40, 40, offline=True, client_ms=original + 40_000, received_ms=T0_MS),
    ]
    claim = decide_play("s1", "trk1", events, deliveries(8))
    assert claim == PlayClaim("s1", "trk1", date(2023, 11, 11), original + 40_000, offline=True)


def test_offline_window() -> None:
    now = T0_MS
    assert offline_refusal(now - 29 * 86_400_000, now) is None
    assert offline_refusal(now - OFFLINE_WINDOW_S * 1000, now) is None  # the last day still
    reason = offline_refusal(now - 31 * 86_400_000, now)
    assert reason is not None and "30 days" in reason and "2023-10-14" in reason
    assert offline_refusal(now + 3_600_000, now) is not None  # an hour in the future
    assert offline_refusal(now + 60_000, now) is None  # a minute of clock skew is fine


def test_utc_day_boundaries() -> None:
    assert utc_day(T0_MS) == DAY0
    midnight = 1_700_006_400_000  # 2023-11-15T00:00:00Z
    assert utc_day(midnight - 1) == DAY0
    assert utc_day(midnight) == date(2023, 11, 15)


def test_other_tracks_evidence_is_ignored() -> None:
    events = listening(40, track_id="trk2")
    assert decide_play("s1", "trk1", events, deliveries(8)) is None


@given(st.randoms(use_true_random=False), st.integers(0, 5))
def test_duplicated_reordered_retried_events_give_the_same_play(
    rng: random.Random, copies: int
) -> None:
    events = listening(60, every_s=5)
    segments = deliveries(8)
    expected = decide_play("s1", "trk1", events, segments)
    noisy = events + [rng.choice(events) for _ in range(copies)]  # retries repeat event ids
    rng.shuffle(noisy)
    noisy_segments = segments + segments[: rng.randint(0, 8)]
    rng.shuffle(noisy_segments)
    assert decide_play("s1", "trk1", noisy, noisy_segments) == expected


@pytest.mark.parametrize("threshold", [30.0, 10.0])
def test_threshold_is_a_parameter(threshold: float) -> None:
    claim = decide_play("s1", "trk1", listening(60), deliveries(10), threshold)
    assert claim is not None and claim.played_ms == T0_MS + int(threshold * 1000)
