"""How many player events a session may post: pure policy over token buckets.

A session's token accepts its telemetry for the session's length plus `OFFLINE_WINDOW_S`
(30 days), so without a total a hostile player could keep adding rows to its session's
partition for a month. Two buckets per session bound it:

- Pace: a full request at once (an offline upload), then `EVENT_RATE_PER_S`, far above a
  player's few events a minute.
- Total: `SESSION_EVENT_CAP` events, refilled only over `OFFLINE_WINDOW_S`. Whatever it sends,
  one session adds at most about twice the cap in the time its token is good for. A player
  playing for four hours sends about 1,500 (a heartbeat every 10 s, plus its incidents).

Both answer with the seconds until the events would be taken (Retry-After). The buckets live
in each edge process, like the key budgets: a session spread over N edge processes gets N
budgets, still bounded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cdn_edge.policy.rate_limit import TokenBuckets
from streamer.plays import OFFLINE_WINDOW_S

MAX_EVENTS_PER_REQUEST = 500
EVENT_BURST = MAX_EVENTS_PER_REQUEST
EVENT_RATE_PER_S = 2.0
SESSION_EVENT_CAP = 5_000
SESSION_EVENT_REFILL_PER_S = SESSION_EVENT_CAP / OFFLINE_WINDOW_S


@dataclass(frozen=True)
class EventRefusal:
    """Why a session's events were not taken, and when they would be."""

    wait_s: float
    reason: str  # "pace" or "session_cap"


class EventBudgets:
    """The pace and total event budgets of every session, on an injected clock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._pace = TokenBuckets(EVENT_BURST, EVENT_RATE_PER_S, clock)
        self._total = TokenBuckets(SESSION_EVENT_CAP, SESSION_EVENT_REFILL_PER_S, clock)

    def take(self, session_id: str, count: int) -> EventRefusal | None:
        """Take `count` events from both budgets, or say which refused and for how long.

        The total is taken first: a session at its cap is told so however slowly it posts."""
        wait_s = self._total.take(session_id, count)
        if wait_s:
            return EventRefusal(wait_s, "session_cap")
        wait_s = self._pace.take(session_id, count)
        if wait_s:
            self._total.give_back(session_id, count)
            return EventRefusal(wait_s, "pace")
        return None
