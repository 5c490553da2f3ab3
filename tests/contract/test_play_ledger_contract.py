"""The PlayLedger contract, run against every store in `SESSION_STORES`: exactly one play per
session, counts per track and day, and recounts that repair a count gone wrong."""

from __future__ import annotations

from datetime import date

import pytest

from streamer.errors import StorageError
from streamer.sessions.port import PlayLedger, PlayRecount, SessionStore
from streamer.telemetry.model import PlayClaim
from tests.contract import session_stores
from tests.contract.session_stores import DAY, MS, OpenStore, drift, in_threads, play

open_store = session_stores.open_store
store = session_stores.store

DAY2 = date(2023, 11, 15)


def test_a_session_counts_one_play(store: PlayLedger) -> None:
    assert store.claim_plays([play()]) == (play(),)
    again = play(day=date(2023, 11, 20), played_ms=MS + 6 * 86_400_000)
    assert store.claim_plays([play(), again]) == ()
    assert store.plays_by_day("trk1", DAY, date(2023, 11, 30)) == {DAY: 1}
    assert store.claim_plays([]) == ()


def test_the_counted_play_is_in_the_sessions_telemetry(store: SessionStore) -> None:
    store.claim_plays([play(offline=True)])
    store.claim_plays([play(day=DAY2)])  # refused: the session has its play
    assert store.session_telemetry("s1").play == play(offline=True)
    assert store.session_telemetry("s2").play is None


def test_one_call_counts_a_session_once(store: PlayLedger) -> None:
    assert store.claim_plays([play("a"), play("a", day=DAY2), play("b")]) == (
        play("a"),
        play("b"),
    )
    assert store.plays_by_day("trk1", DAY, DAY2) == {DAY: 2}


def test_plays_by_day(store: PlayLedger) -> None:
    day5 = date(2023, 11, 18)
    plays = (
        play("a"),
        play("b"),
        play("c", day=DAY2, offline=True),
        play("d", day=day5),
        play("e", track_id="trk2"),
    )
    counted = store.claim_plays(plays)
    assert sorted(p.session_id for p in counted) == ["a", "b", "c", "d", "e"]
    assert store.plays_by_day("trk1", DAY, day5) == {DAY: 2, DAY2: 1, day5: 1}
    assert store.plays_by_day("trk1", DAY2, DAY2) == {DAY2: 1}  # both ends included
    assert store.plays_by_day("trk1", date(2023, 12, 1), date(2023, 12, 31)) == {}
    assert store.plays_by_day("trk2", DAY, DAY) == {DAY: 1}


def test_plays_across_years(store: PlayLedger) -> None:
    days = (date(2023, 12, 31), date(2024, 1, 1), date(2024, 2, 29))
    store.claim_plays([play(f"s{n}", day=d) for n, d in enumerate(days)])
    got = store.plays_by_day("trk1", date(2023, 12, 1), date(2024, 12, 31))
    assert got == dict.fromkeys(days, 1)
    assert store.plays_by_day("trk1", date(2024, 3, 1), date(2024, 2, 1)) == {}


def test_concurrent_claims_count_once(store: PlayLedger) -> None:
    def claim(worker: int) -> list[PlayClaim]:
        return [p for session in range(20) for p in store.claim_plays([play(f"s{session}")])]

    counted = [p for claimed in in_threads(claim) for p in claimed]
    assert sorted(p.session_id for p in counted) == sorted(f"s{n}" for n in range(20))
    assert store.plays_by_day("trk1", DAY, DAY) == {DAY: 20}


def test_plays_outlive_the_connection(open_store: OpenStore) -> None:
    first = open_store()
    first.claim_plays([play()])
    first.close()
    again = open_store()
    assert again.claim_plays([play()]) == ()
    assert again.plays_by_day("trk1", DAY, DAY) == {DAY: 1}


def test_a_recount_repairs_a_count_that_drifted_down_or_up(store: SessionStore) -> None:
    store.claim_plays([play("a"), play("b"), play("c", track_id="trk2")])
    drift(store, "trk1", DAY, -1, marked=False)  # an increment lost
    drift(store, "trk2", DAY, +2, marked=False)  # one counted three times
    assert store.plays_by_day("trk1", DAY, DAY) == {DAY: 1}
    assert store.plays_by_day("trk2", DAY, DAY) == {DAY: 3}

    assert store.recount_plays("trk1", DAY) == PlayRecount("trk1", DAY, counted=1, claims=2)
    assert store.recount_plays("trk2", DAY) == PlayRecount("trk2", DAY, counted=3, claims=1)
    assert store.plays_by_day("trk1", DAY, DAY) == {DAY: 2}
    assert store.plays_by_day("trk2", DAY, DAY) == {DAY: 1}
    again = store.recount_plays("trk1", DAY)
    assert not again.corrected and again.claims == 2  # nothing to correct the second time
    # Counting goes on from the repaired count.
    assert store.claim_plays([play("d")]) == (play("d"),)
    assert store.plays_by_day("trk1", DAY, DAY) == {DAY: 3}


def test_a_recount_of_a_day_without_claims_clears_its_count(store: SessionStore) -> None:
    assert store.recount_plays("trk1", DAY) == PlayRecount("trk1", DAY, 0, 0)
    drift(store, "trk1", DAY, +4, marked=False)
    assert store.recount_plays("trk1", DAY) == PlayRecount("trk1", DAY, 4, 0)
    assert store.plays_by_day("trk1", DAY, DAY) == {}


def test_recount_due_repairs_the_counts_that_may_be_off(store: SessionStore) -> None:
    store.claim_plays([play("a"), play("b"), play("c", day=DAY2), play("d", track_id="trk2")])
    assert store.recount_due(DAY) == ()  # nothing is off
    drift(store, "trk1", DAY, -1, marked=True)
    drift(store, "trk2", DAY, +1, marked=True)

    repaired = store.recount_due(DAY)
    assert sorted(repaired, key=lambda r: r.track_id) == [
        PlayRecount("trk1", DAY, counted=1, claims=2),
        PlayRecount("trk2", DAY, counted=2, claims=1),
    ]
    assert store.plays_by_day("trk1", DAY, DAY2) == {DAY: 2, DAY2: 1}
    assert store.plays_by_day("trk2", DAY, DAY) == {DAY: 1}
    assert store.recount_due(DAY) == ()  # each is recounted once
    assert store.recount_due(DAY2) == ()


def test_the_ledger_after_close_is_a_storage_error(open_store: OpenStore) -> None:
    store = open_store()
    store.close()
    with pytest.raises(StorageError):
        store.claim_plays([play()])
    with pytest.raises(StorageError):
        store.plays_by_day("trk1", DAY, DAY)
    with pytest.raises(StorageError):
        store.recount_plays("trk1", DAY)
    with pytest.raises(StorageError):
        store.recount_due(DAY)
