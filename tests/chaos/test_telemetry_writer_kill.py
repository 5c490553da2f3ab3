"""Scenario 3: SIGKILL of the telemetry writer mid-batch. The writer runs in the edge process
(cdn_edge/telemetry/writer.py, the spooling sink, the disk spool), so this kills a one-process
`streamer serve` while its session store (the shared CQL server, through a proxy the test cuts)
is down and its spool holds batches, with players still posting events.

After the restart (the store back), the spool replays. Counted: acknowledged events not in the
store, plays counted more than once, and the time from the kill until the port serves again
and until every acknowledged event is in the store.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamer.sessions.scylla import ScyllaSessionStore
from streamer.telemetry.spool import MAGIC, SPOOL_DIR
from tests.backends.cql_fixtures import (
    SESSION_TABLES,
    TestKeyspace,
    drop_cql_test_keyspace,
    shared_test_keyspace,
)
from tests.backends.tcp_proxy import HOST, TcpProxy, tcp_proxy
from tests.chaos import figures
from tests.chaos.counts import count
from tests.chaos.edge import TRACK_ID, EdgeProcess, edge_env, published_world
from tests.chaos.players import Load
from tests.chaos.test_edge_worker_kill import wait_for

__all__ = ["drop_cql_test_keyspace"]  # a session fixture: drops the test keyspace at the end

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.timeout(240)]

EVENTS_STORED = 40  # acknowledged with the store up
EVENTS_SPOOLED = 60  # acknowledged with the store down: in the spool at the kill
REPLAY_DEADLINE_S = 60.0


@pytest.fixture
def keyspace() -> TestKeyspace:
    shared = shared_test_keyspace()
    shared.truncate(SESSION_TABLES)
    return shared


@pytest.fixture
def proxy(keyspace: TestKeyspace) -> Iterator[TcpProxy]:
    host = keyspace.settings.cql_hosts.split(",")[0].strip()
    with tcp_proxy(host, keyspace.settings.cql_port) as proxy:
        yield proxy


def spooled_bytes(data_dir: Path) -> int:
    """Bytes of records in the edge's spool files (past each file's magic)."""
    files = (data_dir / SPOOL_DIR).glob("*/*.spool")
    return sum(max(0, f.stat().st_size - len(MAGIC)) for f in files)


def test_killed_writer_replays_its_spool_and_loses_nothing(
    tmp_path: Path, keyspace: TestKeyspace, proxy: TcpProxy
) -> None:
    world = published_world(tmp_path / "data")
    env = edge_env(
        world,
        session_store="scylla",
        cql_hosts=HOST,
        cql_port=str(proxy.port),
        cql_keyspace=keyspace.keyspace,
        cql_consistency="ONE",
    )
    edge = EdgeProcess(["serve", "--segments", "python"], env, tmp_path / "serve.log")
    store = ScyllaSessionStore(keyspace.session)
    edge.start()
    try:
        with Load(edge.base, world.secrets, TRACK_ID, players=4, interval_s=0.05) as load:
            wait_for("events acknowledged with the store up", lambda: load.acked >= EVENTS_STORED)
            proxy.cut()
            before = load.acked
            wait_for(
                "events spooled with the store down",
                lambda: (
                    load.acked >= before + EVENTS_SPOOLED
                    and spooled_bytes(world.settings.data_dir) > 0
                ),
            )
            killed_at = edge.kill()  # one process: serve is the edge and its writer
            edge.wait_exit()
            assert spooled_bytes(world.settings.data_dir) > 0  # the kill left batches spooled
            proxy.restore()
            edge.start()
            recover_s = time.monotonic() - killed_at
            wait_for(
                "every acknowledged event in the store",
                lambda: count(store, load.all, TRACK_ID).lost == 0,
                REPLAY_DEADLINE_S,
            )
            replayed_s = time.monotonic() - killed_at
        load.flush()
    finally:
        edge.stop()

    counts = count(store, load.all, TRACK_ID)
    figures.record(
        "telemetry writer (edge with a spool, store down)",
        lost=counts.lost,
        double_counted=counts.double_counted,
        recover_s=recover_s,
        acked=counts.acked,
        plays=counts.plays_counted,
        spool_replayed_s=round(replayed_s, 1),
    )
    assert counts.duplicated == 0
    assert counts.lost == 0, f"{counts.lost} of {counts.acked} acknowledged events were lost"
    assert counts.double_counted == 0, counts
    assert counts.sessions_with_play > 0, counts
