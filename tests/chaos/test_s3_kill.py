"""Scenario 4 (S3): SIGKILL of the S3 server (a private versitygw) under an edge
(`streamer serve --segments python` over S3, sessions in SQLite) while players play.

Playback goes on from the edge's segment cache, events are still acknowledged and stored;
segments the edge never cached are refused (503) until S3 is back. Counted: acknowledged
events lost, plays counted twice, and the time from the restart of S3 until an uncached
segment is served again.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from streamer.backends import open_session_store
from streamer.objects.s3 import S3ObjectStore
from tests.backends.conftest import PrivateS3Server, private_s3
from tests.chaos import figures
from tests.chaos.counts import count
from tests.chaos.edge import TRACK_ID, EdgeProcess, edge_env, published_world
from tests.chaos.players import Load, Player, request
from tests.chaos.test_edge_worker_kill import wait_for
from tests.edge.builders import build_track, publish

__all__ = ["private_s3"]  # the fixture: a versitygw of the test's own

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.timeout(240)]

BUCKET = "chaos-s3"
EVENTS_BEFORE = 40
EVENTS_DURING = 60
_MEDIA = re.compile(r"^([a-z0-9_]+)/playlist\.m3u8$", re.MULTILINE)


def uncached_segment(base: str, player: Player) -> str:
    """A segment of a rendition the players do not fetch: the edge has not cached it."""
    main = f"{base}/v1/s/{player.session_token}/main.m3u8"
    status, body = request(main)
    assert status == 200, body
    renditions = _MEDIA.findall(body.decode())
    assert len(renditions) > 1, renditions
    return f"{base}/v1/s/{player.session_token}/{renditions[-1]}/seg_00005.m4s"


def test_s3_killed_under_load(private_s3: PrivateS3Server, tmp_path: Path) -> None:
    world = published_world(tmp_path / "data")
    s3_settings = private_s3.settings(tmp_path, bucket=BUCKET)
    publish(
        S3ObjectStore.from_settings(s3_settings),
        build_track(world.ring, TRACK_ID, "0c0c0c0c0c0c0c0c", segments=8),
    )
    env = edge_env(
        world,
        object_store="s3",
        s3_endpoint=s3_settings.s3_endpoint,
        s3_access_key=s3_settings.s3_access_key,
        s3_secret_key=s3_settings.s3_secret_key,
        s3_bucket=BUCKET,
        s3_secure="false",
    )
    edge = EdgeProcess(["serve", "--segments", "python"], env, tmp_path / "serve.log")
    edge.start()
    try:
        with Load(edge.base, world.secrets, TRACK_ID, players=4, interval_s=0.05) as load:
            wait_for("events acknowledged with S3 up", lambda: load.acked >= EVENTS_BEFORE)
            probe = uncached_segment(edge.base, next(p for p in load.all if p.session_id))
            private_s3.kill()
            served_before = load.segments_ok
            acked_before = load.acked
            wait_for(
                "playback and events going on with S3 down",
                lambda: load.acked >= acked_before + EVENTS_DURING,
            )
            served_during = load.segments_ok - served_before
            # Not in the cache and S3 down: 503 once the edge's 10 s store deadline passes;
            # the players' 5 s timeout may come first.
            refused = request(probe)
            assert refused[0] in (0, 503), refused
            private_s3.start()
            restarted_at = time.monotonic()
            wait_for("an uncached segment served again", lambda: request(probe)[0] == 200)
            recover_s = time.monotonic() - restarted_at
        load.flush()
    finally:
        edge.stop()

    store = open_session_store(world.settings)
    try:
        counts = count(store, load.all, TRACK_ID)
    finally:
        store.close()
    figures.record(
        "S3 server (edge over S3)",
        lost=counts.lost,
        double_counted=counts.double_counted,
        recover_s=recover_s,
        acked=counts.acked,
        segments_served_while_down=served_during,
    )
    assert served_during > 0  # from the edge's cache
    assert counts.lost == 0, f"{counts.lost} of {counts.acked} acknowledged events were lost"
    assert counts.double_counted == 0, counts
