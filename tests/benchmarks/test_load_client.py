"""The client-side key budget against the edge's own token buckets, and error kinds."""

from __future__ import annotations

import pytest

from benchmarks.http_client import HttpFailure
from benchmarks.load_client import (
    BUDGET_MARGIN_S,
    CHECK_KEY,
    CHECK_PLAYLIST,
    Budget,
    EndpointSpec,
    UrlPool,
    check_body,
    classify,
    split_spec,
)
from benchmarks.rate_mode import key_budget
from cdn_edge.policy.key_budget import LISTENER_BUDGET, session_key_budget
from cdn_edge.policy.rate_limit import TokenBuckets


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_pool_never_hands_out_a_url_the_edge_would_refuse():
    # Each URL is a session of its own listener, on a track of 60 s (the fastest refill):
    # the edge's session budget is at least its margin, and its listener's.
    clock = ManualClock()
    session = session_key_budget((), 60.0)
    sessions = TokenBuckets(session.capacity, session.refill_per_s, clock)
    listeners = TokenBuckets(LISTENER_BUDGET.capacity, LISTENER_BUDGET.refill_per_s, clock)
    budget = key_budget(60.0)
    urls = [f"key-{i}" for i in range(5)]
    pool = UrlPool(urls, budget, clock.now)
    granted = 0
    for _ in range(4000):  # 40 s at 100 asks a second
        clock.now += 0.01
        taken = pool.take(clock.now)
        if isinstance(taken, str):
            assert sessions.take(taken) == 0.0, f"the session refused {taken} at {clock.now}"
            assert listeners.take(taken) == 0.0, f"the listener refused {taken} at {clock.now}"
            granted += 1
        else:
            assert taken > clock.now
    # Five bursts and most of 40 s of refill: the margin costs a little, not more.
    ceiling = 5 * (budget.burst + 40 * budget.rate_per_s)
    assert ceiling * 0.9 <= granted <= ceiling


def test_when_dry_the_pool_says_when_to_come_back():
    pool = UrlPool(["only"], Budget(2, 0.5), 0.0)
    assert pool.take(0.0) == "only"
    assert pool.take(0.0) == "only"
    again = pool.take(0.0)
    assert isinstance(again, float) and again == pytest.approx(2.0 + BUDGET_MARGIN_S)
    assert pool.take(again) == "only"


def test_without_a_budget_urls_go_round_robin():
    pool = UrlPool(["a", "b"], None, 0.0)
    assert [pool.take(0.0) for _ in range(5)] == ["a", "b", "a", "b", "a"]
    with pytest.raises(ValueError, match="at least one URL"):
        UrlPool([], None, 0.0)


def test_process_shares_split_connections_rate_and_budgeted_urls():
    spec = EndpointSpec("key", tuple("abcde"), 65, 10.0, rate_per_s=1000.0, budget=Budget(20, 1))
    shares = [split_spec(spec, 2, i) for i in range(2)]
    assert [s.connections for s in shares] == [33, 32]
    assert [s.rate_per_s for s in shares] == [500.0, 500.0]
    assert shares[0].urls == ("a", "c", "e") and shares[1].urls == ("b", "d")
    open_urls = split_spec(EndpointSpec("playlist", ("a", "b"), 4, 1.0), 2, 1)
    assert open_urls.urls == ("a", "b")


def test_error_kinds():
    assert classify(TimeoutError()) == "timeout"
    assert classify(HttpFailure("disconnected", "closed")) == "disconnected"
    assert classify(HttpFailure("payload", "bad chunk size")) == "payload"
    assert classify(ConnectionResetError(104, "reset")) == "os_104"
    assert classify(ValueError("x")) == "ValueError"
    assert check_body(CHECK_KEY, b"x" * 16) is None
    assert check_body(CHECK_KEY, b"x" * 15) == "bad_key_length"
    assert check_body(CHECK_PLAYLIST, b"#EXTM3U\n") is None
    assert check_body(CHECK_PLAYLIST, b"{}") == "bad_playlist"
    assert check_body(None, b"") is None
