"""The ad decision service: one decision per break of a free session, within a deadline.

The decision itself is `streamer.ads.decide` (pure). Around it: the campaigns (read every
CAMPAIGNS_TTL_S), the listener's decisions of the day (one store read, plus what this worker
decided and has not written yet), the campaigns' breaks served today (read every SERVED_TTL_S,
plus this worker's own since). A break asked again (a player reloading the asset list) reads
its decision back. Past `timeout_s`, or when the store fails, the break is skipped: the session
plays on without it and `edge_ad_breaks{outcome="skipped_*"}` says so.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from cdn_edge.ads.creatives import CreativeCache
from cdn_edge.ads.metrics import AdMetrics
from cdn_edge.ads.recorder import AdRecorder
from cdn_edge.blocking import BlockingRunner
from cdn_edge.errors import Unavailable
from cdn_edge.playback.tokens import SessionClaims
from streamer.ads.campaigns import Campaign
from streamer.ads.creative import AdCreative
from streamer.ads.decision import Listener, ListenerDay, decide
from streamer.ads.errors import AdError, AdNotFound
from streamer.ads.port import AdDecisionRecord, AdStore, decision_id_for, utc_day
from streamer.errors import StorageError

log = logging.getLogger(__name__)

CAMPAIGNS_TTL_S = 10.0  # a new or paused campaign takes effect within this
SERVED_TTL_S = 5.0  # other workers' breaks reach this worker's pacing within this
MAX_RECENT_LISTENERS = 50_000  # listeners whose unwritten decisions are kept here
# A decision another worker made reaches the store within its recorder's flush (0.2 s,
# cdn_edge.ads.recorder): a break's ad path asked here first reads the store again after this.
RECORD_LAG_S = 0.5
# A break found undecided is answered from memory for this long: a listener asking again and
# again for ad paths of breaks never decided costs the store up to four reads (two days, two
# tries) per break and worker, not four reads and a wait per request. Short, since another
# worker's decision can be late.
UNDECIDED_TTL_S = 2.0
MAX_UNDECIDED = 100_000  # breaks remembered as undecided, the oldest forgotten first
DAY_S = 86400.0


@dataclass(frozen=True)
class ServedBreak:
    record: AdDecisionRecord
    creative: AdCreative


def listener_day(
    records: Iterable[AdDecisionRecord],
    session_id: str,
    break_starts: Sequence[float],
    break_index: int,
    now: float,
) -> ListenerDay:
    """The listener's day as the decision needs it. Listening since the last break: in this
    session, the track's time between the two breaks (a player may ask for a later break's
    list early, while buffering); from another session, the wall-clock time since."""
    served = [r for r in records if r.served]
    listened: float | None = None
    if served:
        last = max(served, key=lambda r: (r.decided_at, r.break_index))
        here = [r for r in served if r.session_id == session_id and r.break_index < break_index]
        if here:
            previous = max(r.break_index for r in here)
            listened = break_starts[break_index] - break_starts[previous]
        else:
            listened = now - last.decided_at
    return ListenerDay(Counter(r.campaign_id for r in served), listened)


class AdDecisionService:
    def __init__(
        self,
        store: AdStore,
        blocking: BlockingRunner,
        creatives: CreativeCache,
        recorder: AdRecorder,
        metrics: AdMetrics,
        clock: Callable[[], float],
        *,
        break_every_s: float,
        timeout_s: float,
    ) -> None:
        self._store = store
        self._blocking = blocking
        self.creatives = creatives
        self.recorder = recorder
        self._metrics = metrics
        self._clock = clock
        self._every_s = break_every_s
        self.timeout_s = timeout_s
        self.record_lag_s = RECORD_LAG_S
        self._campaigns: tuple[float, list[Campaign]] | None = None
        self._served: tuple[float, str, dict[str, int]] | None = None
        self._served_here: Counter[str] = Counter()
        self._recent: OrderedDict[str, dict[str, AdDecisionRecord]] = OrderedDict()
        self._undecided: OrderedDict[str, float] = OrderedDict()  # decision id -> until

    async def decide(
        self, session: SessionClaims, break_index: int, break_starts: Sequence[float]
    ) -> ServedBreak | None:
        """The ad of this break, or None: no ad, premium, or the decision failed.
        `break_starts`: where the session's breaks are in its track, in seconds."""
        started = time.perf_counter()
        served: ServedBreak | None = None
        if session.tier != "free":
            outcome = "premium"
        else:
            try:
                async with asyncio.timeout(self.timeout_s):
                    served, outcome = await self._decide(session, break_index, break_starts)
            except TimeoutError:
                outcome = "skipped_timeout"
                log.warning(
                    "ad break %d of a session skipped: no decision within %.3f s",
                    break_index,
                    self.timeout_s,
                )
            except AdNotFound as exc:
                outcome = "no_creative"
                log.warning("ad break %d skipped: %s", break_index, exc)
            except (StorageError, Unavailable, AdError) as exc:
                outcome = "skipped_error"
                log.warning("ad break %d of a session skipped: %s", break_index, exc)
        self._metrics.breaks.labels(outcome).inc()
        self._metrics.decision_seconds.observe(time.perf_counter() - started)
        return served

    async def _decide(
        self, session: SessionClaims, break_index: int, break_starts: Sequence[float]
    ) -> tuple[ServedBreak | None, str]:
        now = self._clock()
        day = utc_day(now)
        decision_id = decision_id_for(session.session_id, break_index)
        campaigns = await self._campaign_list(now)
        stored = await self._blocking(self._store.decisions_of, session.user_id, day)
        known = {r.decision_id: r for r in stored}
        known.update(
            (i, r)
            for i, r in self._recent.get(session.user_id, {}).items()
            if utc_day(r.decided_at) == day
        )
        record = known.get(decision_id)
        if record is None:
            served = await self._served_today([c.campaign_id for c in campaigns], day, now)
            listener = Listener(session.user_id, session.region, session.tier)
            history = listener_day(
                known.values(), session.session_id, break_starts, break_index, now
            )
            decision = decide(listener, now, campaigns, history, served, self._every_s)
            campaign = decision.campaign
            record = AdDecisionRecord(
                decision_id=decision_id,
                session_id=session.session_id,
                user_id=session.user_id,
                campaign_id=campaign.campaign_id if campaign else "",
                ad_id=campaign.ad_id if campaign else "",
                break_index=break_index,
                decided_at=now,
                reason=decision.reason,
            )
            self._remember(record)
            self.recorder.decision(record)
            if campaign is not None:
                self._served_here[campaign.campaign_id] += 1
        if not record.served:
            return None, record.reason
        creative = await self.creatives.current(record.ad_id)
        return ServedBreak(record, creative), "served"

    async def recorded(self, session: SessionClaims, break_index: int) -> AdDecisionRecord | None:
        """The decision recorded for this break of this session, or None: this worker's, else
        the store's (of today or yesterday: a break decided just before midnight), read once
        more after RECORD_LAG_S when another worker's may not have been written yet. A break
        found undecided is answered so from memory for UNDECIDED_TTL_S."""
        decision_id = decision_id_for(session.session_id, break_index)
        mine = self._recent.get(session.user_id, {}).get(decision_id)
        if mine is not None:
            return mine
        until = self._undecided.get(decision_id)
        if until is not None and self._clock() < until:
            return None
        for attempt in range(2):
            if attempt:
                await asyncio.sleep(self.record_lag_s)
            now = self._clock()
            for day in sorted({utc_day(now), utc_day(now - DAY_S)}, reverse=True):
                stored = await self._blocking(self._store.decisions_of, session.user_id, day)
                for record in stored:
                    if (
                        record.decision_id == decision_id
                        and record.session_id == session.session_id
                    ):
                        self._remember(record)
                        return record
        self._undecided[decision_id] = self._clock() + UNDECIDED_TTL_S
        self._undecided.move_to_end(decision_id)
        while len(self._undecided) > MAX_UNDECIDED:
            self._undecided.popitem(last=False)
        return None

    def _remember(self, record: AdDecisionRecord) -> None:
        self._undecided.pop(record.decision_id, None)
        mine = self._recent.setdefault(record.user_id, {})
        mine[record.decision_id] = record
        self._recent.move_to_end(record.user_id)
        while len(self._recent) > MAX_RECENT_LISTENERS:
            self._recent.popitem(last=False)

    def forget_campaigns(self) -> None:
        """Read the campaigns again at the next decision (the admin API changed one)."""
        self._campaigns = None

    async def _campaign_list(self, now: float) -> list[Campaign]:
        if self._campaigns is None or now - self._campaigns[0] >= CAMPAIGNS_TTL_S:
            self._campaigns = (now, await self._blocking(self._store.campaigns))
        return self._campaigns[1]

    async def _served_today(self, campaign_ids: list[str], day: date, now: float) -> dict[str, int]:
        key = str(day)
        cached = self._served
        if cached is None or cached[1] != key or now - cached[0] >= SERVED_TTL_S:
            counts = await self._blocking(self._store.served_by_campaign, campaign_ids, day)
            self._served = cached = (now, key, counts)
            self._served_here.clear()
        counts = dict(cached[2])
        for campaign, n in self._served_here.items():
            counts[campaign] = counts.get(campaign, 0) + n
        return counts
