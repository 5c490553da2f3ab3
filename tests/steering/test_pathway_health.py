"""The health model on a manual clock: probes and listener reports fail and recover pathways."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from cdn_edge.steering.health import (
    FAILURES_TO_FAIL,
    MIN_WINDOW_REPORTS,
    SUCCESSES_TO_RECOVER,
    HealthBoard,
    HealthPolicy,
    PathwayState,
    after_probe,
    after_report,
)
from cdn_edge.steering.pathways import Pathway
from cdn_edge.steering.policy import pathway_priority
from cdn_edge.steering.probes import PathwayProber, probe_interval_s
from tests.edge.conftest import START, ManualClock


def probes(results: str, state: PathwayState | None = None, start: float = 0.0) -> PathwayState:
    """Feed '+' (success) and '-' (failure) probes one second apart."""
    state = state or PathwayState()
    for i, mark in enumerate(results):
        state = after_probe(state, mark == "+", start + i)
    return state


@pytest.mark.parametrize(
    ("results", "healthy"),
    [
        ("", True),
        ("-", True),  # one lost probe is noise
        ("--", False),
        ("-+-", True),  # not in a row
        ("--++", False),
        ("--+++", True),  # recovered after SUCCESSES_TO_RECOVER in a row
        ("--++-++", False),  # a failure while recovering starts the count again
        ("--++-+++", True),
        ("--+++--", False),  # and it can fail again
    ],
)
def test_probe_table(results: str, healthy: bool) -> None:
    assert (FAILURES_TO_FAIL, SUCCESSES_TO_RECOVER) == (2, 3)
    assert probes(results).healthy is healthy


def test_unhealthy_state_says_why_and_since_when() -> None:
    state = probes("+--")
    assert (state.healthy, state.since) == (False, 2)
    assert state.reason == "2 health probes failed in a row"
    recovered = probes("+++", state, start=10)
    assert (recovered.healthy, recovered.since, recovered.reason) == (True, 12, "")


def reports(state: PathwayState, ok: int, errors: int, now: float) -> PathwayState:
    for _ in range(ok):
        state = after_report(state, True, now)
    for _ in range(errors):
        state = after_report(state, False, now)
    return state


def test_listener_errors_fail_a_pathway_only_with_enough_reports() -> None:
    assert MIN_WINDOW_REPORTS == 20
    few = reports(PathwayState(), 0, MIN_WINDOW_REPORTS - 1, now=100.0)
    assert few.healthy and few.window() == (0, 19)
    mostly_fine = reports(PathwayState(), 11, 9, now=100.0)
    assert mostly_fine.healthy
    half = reports(PathwayState(), 10, 10, now=100.0)
    assert not half.healthy
    assert half.reason == "listeners reported 10 errors in 20 reports within 60 s"


def test_old_reports_leave_the_window() -> None:
    state = reports(PathwayState(), 0, 15, now=100.0)
    # Counted in 10 s buckets, a report leaves the window 60 to 70 s after it came.
    state = reports(state, 0, 10, now=100.0 + 59)
    assert not state.healthy
    state = reports(PathwayState(), 0, 15, now=100.0)
    state = reports(state, 0, 10, now=100.0 + 70)
    assert state.healthy
    assert state.window() == (0, 10)
    state = reports(state, 0, 10, now=100.0 + 75)
    assert not state.healthy


def test_buckets_stay_few_however_many_reports() -> None:
    state = PathwayState()
    for second in range(0, 600):
        state = after_report(state, True, float(second))
    assert len(state.buckets) <= 7
    assert state.window()[0] <= 70


def test_recovery_needs_probes_after_listener_errors() -> None:
    state = reports(PathwayState(), 0, 20, now=0.0)
    assert not state.healthy
    state = reports(state, 50, 0, now=1.0)  # good reports alone do not bring it back
    assert not state.healthy
    state = probes("+++", state, start=2.0)
    assert state.healthy and state.buckets == ()  # a clean slate


def test_policy_validates() -> None:
    with pytest.raises(ValueError, match="failures_to_fail"):
        HealthPolicy(failures_to_fail=0)
    with pytest.raises(ValueError, match="max_error_ratio"):
        HealthPolicy(max_error_ratio=0)
    with pytest.raises(ValueError, match="error_window_s"):
        HealthPolicy(error_window_s=0)


def test_board_tracks_the_unhealthy_set() -> None:
    board = HealthBoard(["edge", "cdn-a", "cdn-b"])
    assert board.unhealthy == frozenset()
    board.probe("cdn-a", False, 1.0)
    board.probe("cdn-a", False, 2.0)
    assert board.unhealthy == frozenset({"cdn-a"})
    assert not board.is_healthy("cdn-a") and board.is_healthy("cdn-b")
    board.report("not-a-pathway", False, 3.0)  # players send anything; ignored
    for t in (4.0, 5.0, 6.0):
        board.probe("cdn-a", True, t)
    assert board.unhealthy == frozenset()


# A failing pathway moves last within one TTL and comes back: the prober on a manual clock.


@dataclass
class FakeResponse:
    status: int


class FakeCdns:
    """Stands in for aiohttp.ClientSession: /healthz answers per host, or the host is down."""

    def __init__(self) -> None:
        self.down: set[str] = set()
        self.asked: list[str] = []

    @asynccontextmanager
    async def get(self, url: str, **_: Any) -> AsyncIterator[FakeResponse]:
        self.asked.append(url)
        host = url.split("/")[2]
        if host in self.down:
            raise aiohttp.ClientConnectionError(f"cannot connect to {host}")
        yield FakeResponse(200)


TTL_S = 300
PATHWAYS = (
    Pathway("edge", "https://edge.example.com"),
    Pathway("cdn-a", "https://a.example.net", frozenset({"SE"}), 1),
    Pathway("cdn-b", "https://b.example.net", frozenset(), 4),
)


async def test_failing_pathway_moves_last_within_one_ttl_and_recovers() -> None:
    clock = ManualClock()
    board = HealthBoard(p.id for p in PATHWAYS)
    interval = probe_interval_s(TTL_S)
    prober = PathwayProber(PATHWAYS, board, clock, interval_s=interval)
    cdns = FakeCdns()
    http: Any = cdns

    def first_for_swedes() -> str:
        return pathway_priority(PATHWAYS, "SE", board.unhealthy, "session-1")[0]

    def last_for_swedes() -> str:
        return pathway_priority(PATHWAYS, "SE", board.unhealthy, "session-1")[-1]

    await prober.probe_all(http)
    assert first_for_swedes() == "cdn-a"  # the regional CDN
    assert "https://a.example.net/healthz" in cdns.asked
    assert not any("edge.example.com" in url for url in cdns.asked)  # the edge is not fetched

    cdns.down.add("a.example.net")
    failed_at = clock()
    while last_for_swedes() != "cdn-a":
        clock.advance(interval)
        await prober.probe_all(http)
        assert clock() - failed_at <= TTL_S, "cdn-a was not moved last within one TTL"
    # A player reloading steering within the next TTL sees it: moved last well within 2 TTLs.
    assert clock() - failed_at <= TTL_S / 5
    assert board.state("cdn-a").reason == "2 health probes failed in a row"
    assert first_for_swedes() in ("edge", "cdn-b")

    cdns.down.clear()
    back_at = clock()
    while first_for_swedes() != "cdn-a":
        clock.advance(interval)
        await prober.probe_all(http)
        assert clock() - back_at <= TTL_S, "cdn-a did not come back within one TTL"
    assert board.is_healthy("cdn-a") and clock() > START


def test_probe_interval_follows_the_ttl() -> None:
    assert probe_interval_s(300) == 10.0
    assert probe_interval_s(30) == 3.0
    assert probe_interval_s(1) == 0.25
