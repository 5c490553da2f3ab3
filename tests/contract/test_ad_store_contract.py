"""One contract for every AdStore: SQLite (embedded) and Scylla (Cassandra of scripts/services)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest

from streamer.ads.campaigns import Campaign
from streamer.ads.errors import InvalidAdEvent
from streamer.ads.port import AdDecisionRecord, AdEvent, AdStore
from streamer.ads.sqlite import SQLiteAdStore
from tests.backends.cql_fixtures import shared_test_keyspace
from tests.backends.services import backend_params

AD_TABLES = ("ad_campaigns", "ad_decisions_by_user", "ad_decisions_by_campaign", "ad_events")
DAY_S = 86400.0
T0 = 1_796_000_000.0  # 2026-11-30 UTC, mid-morning
DAY = date.fromtimestamp(T0 - T0 % DAY_S)


def _scylla(tmp: Path) -> AdStore:
    from streamer.ads.scylla import ScyllaAdStore

    shared = shared_test_keyspace()
    shared.truncate(AD_TABLES)
    return ScyllaAdStore(shared.session)


AD_STORES: dict[str, Callable[[Path], AdStore]] = {
    "sqlite": lambda tmp: SQLiteAdStore(tmp / "ads.sqlite3"),
    "scylla": _scylla,
}


@pytest.fixture(params=backend_params(AD_STORES))
def ad_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AdStore]:
    store = AD_STORES[request.param](tmp_path)
    yield store
    store.close()


def _decision(n: int, user: str = "u1", campaign: str = "c1", at: float = T0) -> AdDecisionRecord:
    return AdDecisionRecord(
        decision_id=f"s{n}.0",
        session_id=f"s{n}",
        user_id=user,
        campaign_id=campaign,
        ad_id="ad-1" if campaign else "",
        break_index=0,
        decided_at=at,
        reason="served" if campaign else "no_campaign",
    )


def test_campaigns_are_stored_replaced_and_listed_in_id_order(ad_store: AdStore) -> None:
    b = Campaign("b", "ad-2", daily_goal=10, frequency_cap=2, regions=frozenset({"SE"}))
    a = Campaign("a", "ad-1", daily_goal=5, frequency_cap=1, hours_utc=(22, 6))
    ad_store.put_campaign(b)
    ad_store.put_campaign(a)
    assert ad_store.campaigns() == [a, b]
    paused = Campaign("b", "ad-2", daily_goal=10, frequency_cap=2, active=False)
    ad_store.put_campaign(paused)
    assert ad_store.campaigns() == [a, paused]


def test_a_decision_written_twice_is_one_decision(ad_store: AdStore) -> None:
    first = _decision(1)
    ad_store.record_decisions([first, _decision(2, campaign="")])
    ad_store.record_decisions([first])  # a spool replay, a retried batch
    assert ad_store.decisions_of("u1", DAY) == [first, _decision(2, campaign="")]
    assert ad_store.served_by_campaign(["c1", "c2"], DAY) == {"c1": 1, "c2": 0}


def test_decisions_are_kept_by_listener_and_utc_day(ad_store: AdStore) -> None:
    ad_store.record_decisions([_decision(1), _decision(2, user="u2"), _decision(3, at=T0 + DAY_S)])
    assert [d.decision_id for d in ad_store.decisions_of("u1", DAY)] == ["s1.0"]
    assert [d.decision_id for d in ad_store.decisions_of("u2", DAY)] == ["s2.0"]
    next_day = date.fromordinal(DAY.toordinal() + 1)
    assert [d.decision_id for d in ad_store.decisions_of("u1", next_day)] == ["s3.0"]
    assert ad_store.served_by_campaign(["c1"], DAY) == {"c1": 2}


def test_an_event_reported_by_player_and_delivery_counts_once(ad_store: AdStore) -> None:
    events = [
        AdEvent("s1.0", "c1", "impression", T0, "delivery"),
        AdEvent("s1.0", "c1", "impression", T0 + 1, "player"),
        AdEvent("s1.0", "c1", "midpoint", T0 + 5, "player"),
        AdEvent("s2.0", "c1", "impression", T0, "player"),
        AdEvent("s9.0", "c2", "impression", T0, "player"),
    ]
    ad_store.record_events(events)
    ad_store.record_events(events[:2])
    counts = ad_store.event_counts("c1", DAY)
    assert counts == {
        "impression": 2,
        "first_quartile": 0,
        "midpoint": 1,
        "third_quartile": 0,
        "complete": 0,
    }


def test_an_event_of_unknown_name_is_refused_when_built() -> None:
    with pytest.raises(InvalidAdEvent, match="not one of impression"):
        AdEvent("s1.0", "c1", "click", T0, "player")  # type: ignore[arg-type]
