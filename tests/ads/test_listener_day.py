"""Listening since the last break, as the decision service works it out."""

from __future__ import annotations

from cdn_edge.ads.interstitials import break_starts
from cdn_edge.ads.service import listener_day
from streamer.ads.port import AdDecisionRecord

STARTS = (0.0, 12.0, 18.0, 24.0)


def _record(session: str, index: int, at: float, campaign: str = "c1") -> AdDecisionRecord:
    reason = "served" if campaign else "not_due"
    ad = "ad" if campaign else ""
    return AdDecisionRecord(f"{session}.{index}", session, "u1", campaign, ad, index, at, reason)


def test_no_break_yet_means_nothing_listened_to_wait_for() -> None:
    day = listener_day([_record("s1", 0, 100.0, campaign="")], "s1", STARTS, 1, 200.0)
    assert day.listened_s is None and day.breaks_by_campaign == {}


def test_within_a_session_listening_is_track_time_between_breaks_not_wall_time() -> None:
    # The player asked for break 2's list 1 s after the pre-roll (buffering ahead).
    day = listener_day([_record("s1", 0, 100.0)], "s1", STARTS, 2, 101.0)
    assert day.listened_s == 18.0
    day = listener_day([_record("s1", 0, 100.0), _record("s1", 1, 101.0)], "s1", STARTS, 2, 101.0)
    assert day.listened_s == 6.0 and day.breaks_by_campaign == {"c1": 2}


def test_from_another_session_listening_is_wall_time_since_the_last_break() -> None:
    day = listener_day([_record("s1", 1, 100.0)], "s2", STARTS, 0, 460.0)
    assert day.listened_s == 360.0


def test_breaks_sit_on_segment_boundaries_at_or_after_each_slot() -> None:
    assert break_starts((6.0, 6.0, 6.0, 6.0, 1.0), 8) == (0.0, 12.0, 18.0, 24.0)
    assert break_starts((6.0, 6.0, 6.0, 6.0), 60) == (0.0,)
    assert break_starts((2.0,) * 10, 5) == (0.0, 6.0, 10.0, 16.0)
