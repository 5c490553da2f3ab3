"""The ad store port: campaigns, the decisions made at breaks, impressions and quartiles.

Every write is idempotent: a decision is keyed by its id (a session's break: the same break
asked twice is one decision), an ad event by (decision id, event), so writing a batch again
after a crash or from a spool, or hearing one event from both the player and the segment
deliveries, counts it once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal, Protocol

from streamer.ads.campaigns import Campaign
from streamer.ads.errors import InvalidAdEvent

AD_STORE_FILE = "ads.sqlite3"
AD_RETENTION_S = 400 * 86400  # as sessions: the year's billing and its disputes
# IAB video/audio ad metrics: the impression at the start, then the quartiles.
AdEventName = Literal["impression", "first_quartile", "midpoint", "third_quartile", "complete"]
AD_EVENTS: tuple[AdEventName, ...] = (
    "impression",
    "first_quartile",
    "midpoint",
    "third_quartile",
    "complete",
)
AdEventSource = Literal["player", "delivery"]


def utc_day(unix_s: float) -> date:
    return datetime.fromtimestamp(unix_s, UTC).date()


def decision_id_for(session_id: str, break_index: int) -> str:
    """One decision per break of a session: asking again reads the same one back."""
    return f"{session_id}.{break_index}"


@dataclass(frozen=True)
class AdDecisionRecord:
    decision_id: str
    session_id: str
    user_id: str
    campaign_id: str  # "" when the break got no ad
    ad_id: str  # "" likewise
    break_index: int
    decided_at: float  # unix seconds
    reason: str  # streamer.ads.decision.Reason, or "failed" when the decision did not finish

    @property
    def served(self) -> bool:
        return bool(self.campaign_id)


@dataclass(frozen=True)
class AdEvent:
    decision_id: str
    campaign_id: str
    event: AdEventName
    at: float  # unix seconds
    source: AdEventSource

    def __post_init__(self) -> None:
        if self.event not in AD_EVENTS:
            raise InvalidAdEvent(f"ad event {self.event!r} is not one of {', '.join(AD_EVENTS)}")
        if not self.decision_id or not self.campaign_id:
            raise InvalidAdEvent("an ad event needs its decision id and campaign id")


class AdStore(Protocol):
    """Campaigns, decisions and ad events; SQLite (embedded) or Scylla."""

    def put_campaign(self, campaign: Campaign) -> None:
        """Add or replace a campaign."""
        ...

    def campaigns(self) -> list[Campaign]:
        """Every campaign, in campaign id order."""
        ...

    def record_decisions(self, decisions: Sequence[AdDecisionRecord]) -> None:
        """Idempotent by decision id."""
        ...

    def decisions_of(self, user_id: str, day: date) -> list[AdDecisionRecord]:
        """The listener's decisions of one UTC day, in decision id order."""
        ...

    def served_by_campaign(self, campaign_ids: Sequence[str], day: date) -> dict[str, int]:
        """Breaks served per campaign on one UTC day (pacing)."""
        ...

    def record_events(self, events: Sequence[AdEvent]) -> None:
        """Idempotent by (decision id, event): each is counted once whoever reports it."""
        ...

    def event_counts(self, campaign_id: str, day: date) -> dict[AdEventName, int]:
        """Impressions and quartiles of a campaign on one UTC day (of the event)."""
        ...

    def close(self) -> None: ...
