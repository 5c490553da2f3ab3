"""Event budgets: a session's pace and its total, on a manual clock (issue 15, item 5)."""

from __future__ import annotations

import pytest

from cdn_edge.policy.event_budget import (
    EVENT_BURST,
    EVENT_RATE_PER_S,
    SESSION_EVENT_CAP,
    EventBudgets,
)
from cdn_edge.policy.rate_limit import retry_after_header
from streamer.plays import OFFLINE_WINDOW_S
from tests.edge.conftest import ManualClock


def test_a_player_posting_in_real_time_for_four_hours_is_never_refused() -> None:
    clock = ManualClock()
    budgets = EventBudgets(clock)
    for _ in range(4 * 360):  # a heartbeat every 10 s, plus an incident each minute
        assert budgets.take("s1", 1) is None
        clock.advance(10)
    assert budgets.take("s1", 60) is None


def test_a_burst_past_the_pace_waits_for_the_pace_and_keeps_the_total() -> None:
    clock = ManualClock()
    budgets = EventBudgets(clock)
    assert budgets.take("s1", EVENT_BURST) is None
    refusal = budgets.take("s1", 4)
    assert refusal is not None and refusal.reason == "pace"
    assert refusal.wait_s == pytest.approx(4 / EVENT_RATE_PER_S)
    clock.advance(refusal.wait_s)
    assert budgets.take("s1", 4) is None


def test_a_hostile_player_adds_at_most_about_twice_the_cap_while_its_token_is_good() -> None:
    clock = ManualClock()
    budgets = EventBudgets(clock)
    taken = 0
    refusals = set()
    elapsed = 0.0
    # Full requests as fast as the pace allows, for the whole offline window.
    while elapsed < OFFLINE_WINDOW_S:
        refusal = budgets.take("hostile", EVENT_BURST)
        if refusal is None:
            taken += EVENT_BURST
            step = EVENT_BURST / EVENT_RATE_PER_S
        else:
            refusals.add(refusal.reason)
            step = retry_after_header(refusal.wait_s)  # what the client is told to wait
        clock.advance(step)
        elapsed += step
    assert "session_cap" in refusals
    assert SESSION_EVENT_CAP < taken <= 2 * SESSION_EVENT_CAP + EVENT_BURST


def test_at_the_cap_the_answer_says_so_and_waits_for_the_total_to_refill() -> None:
    clock = ManualClock()
    budgets = EventBudgets(clock)
    for _ in range(SESSION_EVENT_CAP // EVENT_BURST):
        assert budgets.take("s1", EVENT_BURST) is None
        clock.advance(EVENT_BURST / EVENT_RATE_PER_S)
    refusal = budgets.take("s1", 50)  # more than the total refilled meanwhile (about 5)
    assert refusal is not None and refusal.reason == "session_cap"
    assert refusal.wait_s > 3600  # hours, not seconds: retrying soon does not help
    assert budgets.take("s2", 10) is None  # budgets are per session


def test_a_request_refused_by_the_pace_costs_nothing_of_the_total() -> None:
    clock = ManualClock()
    budgets = EventBudgets(clock)
    assert budgets.take("s1", EVENT_BURST) is None
    for _ in range(100):  # a player retrying too fast, refused each time by the pace
        refusal = budgets.take("s1", EVENT_BURST)
        assert refusal is not None and refusal.reason == "pace"
    clock.advance(EVENT_BURST / EVENT_RATE_PER_S)
    assert budgets.take("s1", EVENT_BURST) is None
