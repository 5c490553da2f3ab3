"""The session recorder's count of running sessions stays bounded without a metrics scrape."""

from __future__ import annotations

from pathlib import Path

from cdn_edge.blocking import BlockingRunner
from cdn_edge.metrics import EdgeMetrics
from cdn_edge.telemetry.session_recorder import SessionRecorder
from streamer.sessions.port import PlaybackSession
from streamer.sessions.sqlite import SQLiteSessionStore
from tests.edge.conftest import ManualClock

TTL_S = 3600


def session(n: int, now: float) -> PlaybackSession:
    return PlaybackSession(
        session_id=f"s{n:08d}",
        user_id="u1",
        tier="free",
        region="SE",
        track_id="trk1",
        version="v1",
        created_at=int(now),
        expires_at=int(now) + TTL_S,
    )


def test_expired_sessions_are_forgotten_without_a_scrape(tmp_path: Path) -> None:
    clock = ManualClock()
    runner = BlockingRunner(threads=1)
    recorder = SessionRecorder(
        SQLiteSessionStore(tmp_path / "s.sqlite3"), runner, EdgeMetrics(), clock, 10**6
    )
    held: list[int] = []
    for n in range(6 * 3600):  # six hours of one new session a second, never scraped
        recorder.record(session(n, clock()))
        clock.advance(1)
        held.append(len(recorder._expiries))  # what it keeps per session opened

    assert max(held) <= TTL_S + 1  # the sessions still running, not every session opened
    assert recorder.active() == TTL_S - 1  # opened in the last hour, the first just expired
