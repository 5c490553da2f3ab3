"""The ad store on Scylla (or Cassandra): the tables of migration 6 (streamer.cql.schema).

    ad_campaigns               campaign_id                      the campaign's JSON
    ad_decisions_by_user       (user_id, day), decision_id      caps and the last break: one read
    ad_decisions_by_campaign   (campaign_id, day), decision_id  pacing: one count per campaign
    ad_events                  (campaign_id, day), decision_id, event   reports, exactly once

A decision goes to both decision tables in one logged batch, so a listener's cap and a
campaign's pace never disagree about it. Writes are upserts of the same values: idempotent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date

from streamer.ads.campaigns import Campaign, decode_campaign, encode_campaign
from streamer.ads.port import AD_EVENTS, AdDecisionRecord, AdEvent, AdEventName, utc_day
from streamer.cql.connection import Cql, CqlSession
from streamer.cql.schema import open_migrated_session
from streamer.settings import Settings

_PUT_CAMPAIGN = Cql("INSERT INTO ad_campaigns (campaign_id, doc) VALUES (?, ?)", idempotent=True)
_CAMPAIGNS = Cql("SELECT doc FROM ad_campaigns", idempotent=True)
_PUT_BY_USER = Cql(
    "INSERT INTO ad_decisions_by_user (user_id, day, decision_id, session_id, campaign_id,"
    " ad_id, break_index, decided_at, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    idempotent=True,
)
_PUT_BY_CAMPAIGN = Cql(
    "INSERT INTO ad_decisions_by_campaign (campaign_id, day, decision_id) VALUES (?, ?, ?)",
    idempotent=True,
)
_BY_USER = Cql(
    "SELECT decision_id, session_id, campaign_id, ad_id, break_index, decided_at, reason"
    " FROM ad_decisions_by_user WHERE user_id = ? AND day = ?",
    idempotent=True,
)
_SERVED = Cql(
    "SELECT count(*) AS n FROM ad_decisions_by_campaign WHERE campaign_id = ? AND day = ?",
    idempotent=True,
)
_PUT_EVENT = Cql(
    "INSERT INTO ad_events (campaign_id, day, decision_id, event, at, source)"
    " VALUES (?, ?, ?, ?, ?, ?)",
    idempotent=True,
)
_EVENTS = Cql(
    "SELECT event FROM ad_events WHERE campaign_id = ? AND day = ?",
    idempotent=True,
)


class ScyllaAdStore:
    def __init__(self, session: CqlSession, *, owns_session: bool = False) -> None:
        self.session = session
        self._owns = owns_session

    @classmethod
    def from_settings(cls, settings: Settings) -> ScyllaAdStore:
        """Connect; ConfigError saying to run `streamer db migrate` if the schema is behind."""
        return cls(open_migrated_session(settings), owns_session=True)

    def __repr__(self) -> str:
        return f"ScyllaAdStore({self.session!r})"

    def put_campaign(self, campaign: Campaign) -> None:
        self.session.execute(
            _PUT_CAMPAIGN,
            (campaign.campaign_id, encode_campaign(campaign)),
            action=f"store campaign {campaign.campaign_id}",
        )

    def campaigns(self) -> list[Campaign]:
        rows = self.session.execute(_CAMPAIGNS, action="read campaigns")
        found = [decode_campaign(row["doc"]) for row in rows]
        return sorted(found, key=lambda c: c.campaign_id)

    def record_decisions(self, decisions: Sequence[AdDecisionRecord]) -> None:
        pending = []
        for d in decisions:
            day = utc_day(d.decided_at)
            statements: list[tuple[Cql, Sequence[object]]] = [
                (
                    _PUT_BY_USER,
                    (
                        d.user_id,
                        day,
                        d.decision_id,
                        d.session_id,
                        d.campaign_id,
                        d.ad_id,
                        d.break_index,
                        d.decided_at,
                        d.reason,
                    ),
                )
            ]
            if d.served:
                statements.append((_PUT_BY_CAMPAIGN, (d.campaign_id, day, d.decision_id)))
                self.session.execute_batch(statements, action=f"record ad decision {d.decision_id}")
            else:
                pending.append(
                    self.session.execute_async(
                        statements[0][0],
                        statements[0][1],
                        action=f"record ad decision {d.decision_id}",
                    )
                )
        for future in pending:
            future.result()

    def decisions_of(self, user_id: str, day: date) -> list[AdDecisionRecord]:
        rows = self.session.execute(
            _BY_USER, (user_id, day), action=f"read the ad decisions of {user_id}"
        )
        return [
            AdDecisionRecord(
                decision_id=row["decision_id"],
                session_id=row["session_id"],
                user_id=user_id,
                campaign_id=row["campaign_id"],
                ad_id=row["ad_id"],
                break_index=row["break_index"],
                decided_at=row["decided_at"],
                reason=row["reason"],
            )
            for row in rows
        ]

    def served_by_campaign(self, campaign_ids: Sequence[str], day: date) -> dict[str, int]:
        futures = {
            campaign: self.session.execute_async(
                _SERVED, (campaign, day), action=f"count the breaks served by {campaign}"
            )
            for campaign in campaign_ids
        }
        counts = {}
        for campaign, future in futures.items():
            row = future.result().one()
            counts[campaign] = int(row["n"]) if row is not None else 0
        return counts

    def record_events(self, events: Sequence[AdEvent]) -> None:
        futures = [
            self.session.execute_async(
                _PUT_EVENT,
                (e.campaign_id, utc_day(e.at), e.decision_id, e.event, e.at, e.source),
                action=f"record ad event {e.event} of {e.decision_id}",
            )
            for e in events
        ]
        for future in futures:
            future.result()

    def event_counts(self, campaign_id: str, day: date) -> dict[AdEventName, int]:
        rows = self.session.execute(
            _EVENTS, (campaign_id, day), action=f"count the ad events of campaign {campaign_id}"
        )
        found = Counter(row["event"] for row in rows)
        return {event: found.get(event, 0) for event in AD_EVENTS}

    def close(self) -> None:
        if self._owns:
            self.session.close()
