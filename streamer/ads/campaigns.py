"""Campaigns: which creative runs, for whom, when, how often, and how fast.

A campaign is validated when built and stored as JSON (`encode_campaign`, `decode_campaign`),
the same text in every ad store.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from streamer.ads.errors import InvalidCampaign
from streamer.catalog import Tier

_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")  # as track ids (cdn_edge/policy/names.py)
_REGION = re.compile(r"[A-Z]{2}")  # ISO 3166-1 alpha-2, as listener tokens carry it
MAX_DAILY_GOAL = 1_000_000_000
MAX_FREQUENCY_CAP = 1_000


@dataclass(frozen=True)
class Campaign:
    """One creative, its targeting, its per-listener cap and its daily goal."""

    campaign_id: str
    ad_id: str
    daily_goal: int  # breaks a day the campaign paces toward (spread over its hours)
    frequency_cap: int  # breaks a day one listener may get from this campaign
    regions: frozenset[str] = frozenset()  # empty: every region
    tiers: frozenset[Tier] = frozenset({"free"})  # premium sessions never get ads anyway
    hours_utc: tuple[int, int] = (0, 24)  # [start, end) in UTC hours; start > end wraps midnight
    active: bool = True

    def __post_init__(self) -> None:
        for what, value in (("campaign id", self.campaign_id), ("ad id", self.ad_id)):
            if not isinstance(value, str) or not _ID.fullmatch(value):
                raise InvalidCampaign(
                    f"{what} {str(value)[:40]!r} must be 1-128 letters, digits, '_', '-' or '.'"
                )
        for what, number, top in (
            ("daily_goal", self.daily_goal, MAX_DAILY_GOAL),
            ("frequency_cap", self.frequency_cap, MAX_FREQUENCY_CAP),
        ):
            if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= top:
                raise InvalidCampaign(
                    f"campaign {self.campaign_id}: {what} must be an integer from 1 to {top}, "
                    f"got {number!r}"
                )
        bad_regions = sorted(r for r in self.regions if not _REGION.fullmatch(str(r)))
        if bad_regions:
            raise InvalidCampaign(
                f"campaign {self.campaign_id}: regions must be two capital letters "
                f"(ISO 3166-1), got {bad_regions[:3]}"
            )
        if not self.tiers or not self.tiers <= {"free", "premium"}:
            raise InvalidCampaign(
                f"campaign {self.campaign_id}: tiers must be a non-empty subset of "
                f"free, premium, got {sorted(self.tiers)}"
            )
        start, end = self.hours_utc
        if not (0 <= start <= 23 and 1 <= end <= 24 and start != end):
            raise InvalidCampaign(
                f"campaign {self.campaign_id}: hours_utc must be [start, end) with start 0-23, "
                f"end 1-24 and start != end, got {list(self.hours_utc)}"
            )

    def runs_at_hour(self, hour: int) -> bool:
        start, end = self.hours_utc
        return start <= hour < end if start < end else hour >= start or hour < end

    @property
    def hours_a_day(self) -> int:
        start, end = self.hours_utc
        return end - start if start < end else 24 - start + end


def campaign_from_doc(doc: object) -> Campaign:
    """A Campaign from its JSON object; InvalidCampaign names the first bad field."""
    if not isinstance(doc, dict):
        raise InvalidCampaign("a campaign is a JSON object")
    known = {
        "campaign_id",
        "ad_id",
        "daily_goal",
        "frequency_cap",
        "regions",
        "tiers",
        "hours_utc",
        "active",
    }
    unknown = sorted(set(doc) - known)
    if unknown:
        raise InvalidCampaign(
            f"unknown campaign fields {unknown}; expected some of {sorted(known)}"
        )
    for name in ("campaign_id", "ad_id", "daily_goal", "frequency_cap"):
        if name not in doc:
            raise InvalidCampaign(f"a campaign needs {name!r}")
    regions = doc.get("regions", [])
    tiers = doc.get("tiers", ["free"])
    hours = doc.get("hours_utc", [0, 24])
    active = doc.get("active", True)
    if not isinstance(regions, list) or not all(isinstance(r, str) for r in regions):
        raise InvalidCampaign('regions must be a list of region codes, e.g. ["SE", "NO"]')
    if not isinstance(tiers, list) or not all(t in ("free", "premium") for t in tiers):
        raise InvalidCampaign('tiers must be a list of "free" and/or "premium"')
    if (
        not isinstance(hours, list)
        or len(hours) != 2
        or not all(isinstance(h, int) and not isinstance(h, bool) for h in hours)
    ):
        raise InvalidCampaign("hours_utc must be [start, end], whole UTC hours")
    if not isinstance(active, bool):
        raise InvalidCampaign("active must be true or false")
    return Campaign(
        campaign_id=doc["campaign_id"],
        ad_id=doc["ad_id"],
        daily_goal=doc["daily_goal"],
        frequency_cap=doc["frequency_cap"],
        regions=frozenset(regions),
        tiers=frozenset(tiers),
        hours_utc=(hours[0], hours[1]),
        active=active,
    )


def campaign_doc(campaign: Campaign) -> dict[str, Any]:
    return {
        "campaign_id": campaign.campaign_id,
        "ad_id": campaign.ad_id,
        "daily_goal": campaign.daily_goal,
        "frequency_cap": campaign.frequency_cap,
        "regions": sorted(campaign.regions),
        "tiers": sorted(campaign.tiers),
        "hours_utc": list(campaign.hours_utc),
        "active": campaign.active,
    }


def encode_campaign(campaign: Campaign) -> str:
    return json.dumps(campaign_doc(campaign), sort_keys=True)


def decode_campaign(text: str) -> Campaign:
    try:
        return campaign_from_doc(json.loads(text))
    except ValueError as exc:
        raise InvalidCampaign(f"a stored campaign is not JSON: {exc}") from exc
