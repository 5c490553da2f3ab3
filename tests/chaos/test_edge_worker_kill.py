"""Scenario 1: SIGKILL of one edge worker of `streamer serve --workers 2` while players fetch
segments and post events.

The supervisor stops the surviving worker (it drains) and exits non-zero; the service manager
starts serve again. Counted: events acknowledged (202) and not in the store afterwards, plays
counted more than once per session, and the time from the kill until the port serves again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from streamer.backends import open_session_store
from tests.chaos import figures
from tests.chaos.counts import count
from tests.chaos.edge import TRACK_ID, EdgeProcess, edge_env, published_world
from tests.chaos.players import Load

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

EVENTS_BEFORE = 80  # acknowledged before the kill: the writer is mid-stream
EVENTS_AFTER = 80  # and after the restart
WAIT_S = 60.0


def wait_for(what: str, check: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("segments", ["python", "nginx"])
def test_killed_edge_worker_loses_no_acknowledged_event(tmp_path: Path, segments: str) -> None:
    world = published_world(tmp_path / "data")
    edge = EdgeProcess(
        ["serve", "--segments", segments, "--workers", "2"], edge_env(world), tmp_path / "serve.log"
    )
    edge.start()
    try:
        with Load(edge.base, world.secrets, TRACK_ID, players=6, interval_s=0.05) as load:
            wait_for("events acknowledged before the kill", lambda: load.acked >= EVENTS_BEFORE)
            workers = edge.workers()
            assert len(workers) == 2, edge.tail()
            killed_at = edge.kill(workers[0])
            edge.wait_exit()  # the supervisor stops the other worker and exits
            edge.start()  # as systemd's Restart=always would
            recover_s = time.monotonic() - killed_at
            before = load.acked
            wait_for(
                "events acknowledged after the restart", lambda: load.acked >= before + EVENTS_AFTER
            )
        load.flush()
    finally:
        edge.stop()  # SIGTERM: the writer writes what it holds, the shipper ships the log

    store = open_session_store(world.settings)
    try:
        counts = count(store, load.all, TRACK_ID)
    finally:
        store.close()
    figures.record(
        f"edge worker, --segments {segments}",
        lost=counts.lost,
        double_counted=counts.double_counted,
        recover_s=recover_s,
        acked=counts.acked,
        plays=counts.plays_counted,
    )
    assert counts.duplicated == 0
    assert counts.lost == 0, f"{counts.lost} of {counts.acked} acknowledged events were lost"
    assert counts.double_counted == 0, counts
    assert counts.sessions_with_play > 0, counts  # players did finish the track
