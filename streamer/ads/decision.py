"""The ad decision: pure, over small values, time passed in.

At a break (0 is the pre-roll, n the n-th mid-roll slot of a track), a free listener gets an ad
when `break_every_s` of listening has passed since their last break (`listened_s`, worked out by
the caller: within a session the distance between the two breaks in the track, across sessions
the wall-clock time since the last one, a pause counting as listening) and some campaign is
eligible:

- targeting: the listener's tier and region, and the campaign's hours (UTC);
- frequency cap: fewer breaks from this campaign to this listener today than its cap;
- pacing: fewer breaks today than its daily goal, and no further ahead of an even spread over
  its hours than PACING_BURST_SHARE of the goal (at least one break), so a goal is reached
  across the day, not in its first minutes.

Among the eligible, the one furthest behind its pace wins (ties: the lowest campaign id), so
the choice is deterministic for the same inputs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from streamer.ads.campaigns import Campaign
from streamer.catalog import Tier

PACING_BURST_SHARE = 0.02  # how far ahead of an even spread a campaign may run
SECONDS_PER_HOUR = 3600

Reason = Literal["served", "not_due", "premium", "no_campaign"]


@dataclass(frozen=True)
class Listener:
    user_id: str
    region: str  # "" when the token named none
    tier: Tier


@dataclass(frozen=True)
class ListenerDay:
    """The listener's breaks today (UTC) as the store has them."""

    breaks_by_campaign: Mapping[str, int]
    listened_s: float | None  # since the last break served; None: none yet today


@dataclass(frozen=True)
class Decision:
    campaign: Campaign | None  # None: no ad in this break
    reason: Reason


def day_fraction(campaign: Campaign, now: float) -> float:
    """How much of the campaign's hours today have passed at `now`, from 0 to 1."""
    moment = datetime.fromtimestamp(now, UTC)
    start, _ = campaign.hours_utc
    into_hour = (moment.minute * 60 + moment.second) / SECONDS_PER_HOUR
    elapsed = 0.0
    for offset in range(campaign.hours_a_day):
        hour = (start + offset) % 24
        if hour == moment.hour:
            elapsed += into_hour
            break
        elapsed += 1.0
    else:
        return 1.0 if _window_over(campaign, moment.hour) else 0.0
    return elapsed / campaign.hours_a_day


def _window_over(campaign: Campaign, hour: int) -> bool:
    start, end = campaign.hours_utc
    return start < end and hour >= end


def pace_allowance(campaign: Campaign, now: float) -> float:
    """Breaks the campaign may have had by `now` today."""
    burst = max(1.0, math.ceil(campaign.daily_goal * PACING_BURST_SHARE))
    return min(
        float(campaign.daily_goal), campaign.daily_goal * day_fraction(campaign, now) + burst
    )


def eligible(
    campaign: Campaign, listener: Listener, now: float, listener_breaks: int, delivered: int
) -> bool:
    hour = datetime.fromtimestamp(now, UTC).hour
    return (
        campaign.active
        and listener.tier in campaign.tiers
        and (not campaign.regions or listener.region in campaign.regions)
        and campaign.runs_at_hour(hour)
        and listener_breaks < campaign.frequency_cap
        and delivered < pace_allowance(campaign, now)
    )


def decide(
    listener: Listener,
    now: float,
    campaigns: Iterable[Campaign],
    history: ListenerDay,
    delivered_today: Mapping[str, int],
    break_every_s: float,
) -> Decision:
    """The ad for this break, or None and why."""
    if listener.tier == "premium":
        return Decision(None, "premium")
    if history.listened_s is not None and history.listened_s < break_every_s:
        return Decision(None, "not_due")
    best: tuple[float, str, Campaign] | None = None
    for campaign in campaigns:
        delivered = delivered_today.get(campaign.campaign_id, 0)
        mine = history.breaks_by_campaign.get(campaign.campaign_id, 0)
        if not eligible(campaign, listener, now, mine, delivered):
            continue
        progress = delivered / pace_allowance(campaign, now)
        rank = (progress, campaign.campaign_id, campaign)
        if best is None or rank[:2] < best[:2]:
            best = rank
    if best is None:
        return Decision(None, "no_campaign")
    return Decision(best[2], "served")
