"""The pure ad decision: targeting, frequency caps, pacing, the break interval."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamer.ads.campaigns import Campaign, campaign_from_doc
from streamer.ads.decision import Listener, ListenerDay, decide, pace_allowance
from streamer.ads.errors import InvalidCampaign

NOON = datetime(2026, 11, 30, 12, 0, tzinfo=UTC).timestamp()
FREE_SE = Listener("u1", "SE", "free")
NOTHING = ListenerDay({}, None)


def _campaign(campaign_id: str = "c1", **kwargs: object) -> Campaign:
    fields: dict[str, object] = {"ad_id": "ad-1", "daily_goal": 1000, "frequency_cap": 3}
    fields.update(kwargs)
    return Campaign(campaign_id, **fields)  # type: ignore[arg-type]


def test_a_free_listener_gets_the_eligible_campaign() -> None:
    decision = decide(FREE_SE, NOON, [_campaign()], NOTHING, {}, 900)
    assert decision.reason == "served" and decision.campaign == _campaign()


def test_premium_listeners_never_get_an_ad_whatever_the_campaign_targets() -> None:
    everyone = _campaign(tiers=frozenset({"free", "premium"}))
    decision = decide(Listener("u1", "SE", "premium"), NOON, [everyone], NOTHING, {}, 900)
    assert decision.campaign is None and decision.reason == "premium"


def test_no_break_until_the_interval_of_listening_has_passed() -> None:
    recent = ListenerDay({}, 899)
    assert decide(FREE_SE, NOON, [_campaign()], recent, {}, 900).reason == "not_due"
    due = ListenerDay({}, 900)
    assert decide(FREE_SE, NOON, [_campaign()], due, {}, 900).reason == "served"


@pytest.mark.parametrize(
    ("campaign", "why"),
    [
        (_campaign(regions=frozenset({"NO"})), "another region"),
        (_campaign(hours_utc=(18, 24)), "outside its hours"),
        (_campaign(active=False), "paused"),
    ],
)
def test_targeting_leaves_a_campaign_out(campaign: Campaign, why: str) -> None:
    assert decide(FREE_SE, NOON, [campaign], NOTHING, {}, 900).reason == "no_campaign", why


def test_hours_that_wrap_midnight_cover_both_sides() -> None:
    night = _campaign(hours_utc=(22, 6))
    assert night.runs_at_hour(23) and night.runs_at_hour(0) and night.runs_at_hour(5)
    assert not night.runs_at_hour(6) and not night.runs_at_hour(12)


def test_the_frequency_cap_counts_this_listeners_breaks_of_the_day() -> None:
    capped = ListenerDay({"c1": 3}, 3600)
    assert decide(FREE_SE, NOON, [_campaign()], capped, {}, 900).reason == "no_campaign"
    other = _campaign("c2")
    assert decide(FREE_SE, NOON, [_campaign(), other], capped, {}, 900).campaign == other


def test_pacing_spreads_the_goal_over_the_campaigns_hours() -> None:
    # At noon half of a 0-24 day has passed: 500 of 1000, plus a 2% burst of 20.
    assert pace_allowance(_campaign(), NOON) == pytest.approx(520)
    ahead = decide(FREE_SE, NOON, [_campaign()], NOTHING, {"c1": 520}, 900)
    assert ahead.reason == "no_campaign"
    assert decide(FREE_SE, NOON, [_campaign()], NOTHING, {"c1": 519}, 900).reason == "served"


def test_the_campaign_furthest_behind_its_pace_wins() -> None:
    a, b = _campaign("a"), _campaign("b")
    assert decide(FREE_SE, NOON, [a, b], NOTHING, {"a": 300, "b": 100}, 900).campaign == b
    assert decide(FREE_SE, NOON, [a, b], NOTHING, {"a": 100, "b": 100}, 900).campaign == a


@given(
    delivered=st.integers(0, 2000),
    mine=st.integers(0, 10),
    goal=st.integers(1, 1500),
    cap=st.integers(1, 5),
    at=st.floats(NOON - 43_200, NOON + 43_199),
)
def test_a_served_break_never_passes_the_cap_or_the_daily_goal(
    delivered: int, mine: int, goal: int, cap: int, at: float
) -> None:
    campaign = _campaign(daily_goal=goal, frequency_cap=cap)
    decision = decide(
        FREE_SE, at, [campaign], ListenerDay({"c1": mine}, None), {"c1": delivered}, 0
    )
    if decision.campaign is not None:
        assert mine < cap and delivered < goal
        assert delivered < pace_allowance(campaign, at)


@given(at=st.floats(NOON - 43_200, NOON + 43_199), later=st.floats(0, 43_199))
def test_the_pace_allowance_never_shrinks_as_the_day_goes_on(at: float, later: float) -> None:
    campaign = _campaign(hours_utc=(6, 20))
    if datetime.fromtimestamp(at, UTC).date() == datetime.fromtimestamp(at + later, UTC).date():
        assert pace_allowance(campaign, at + later) >= pace_allowance(campaign, at)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"ad_id": "a", "daily_goal": 1, "frequency_cap": 1}, "needs 'campaign_id'"),
        ({"campaign_id": "c", "ad_id": "a", "daily_goal": 0, "frequency_cap": 1}, "daily_goal"),
        ({"campaign_id": "c/", "ad_id": "a", "daily_goal": 1, "frequency_cap": 1}, "campaign id"),
        (
            {
                "campaign_id": "c",
                "ad_id": "a",
                "daily_goal": 1,
                "frequency_cap": 1,
                "regions": ["se"],
            },
            "two capital letters",
        ),
        (
            {
                "campaign_id": "c",
                "ad_id": "a",
                "daily_goal": 1,
                "frequency_cap": 1,
                "hours_utc": [5, 5],
            },
            "hours_utc",
        ),
        (
            {"campaign_id": "c", "ad_id": "a", "daily_goal": 1, "frequency_cap": 1, "x": 1},
            "unknown",
        ),
    ],
)
def test_a_bad_campaign_is_refused_with_the_field_named(doc: object, message: str) -> None:
    with pytest.raises(InvalidCampaign, match=message):
        campaign_from_doc(doc)
