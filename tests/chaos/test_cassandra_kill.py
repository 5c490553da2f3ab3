"""Scenario 5 (Cassandra): SIGKILL of the session store's CQL server under an edge.

`streamer serve --segments python` over a Cassandra node of the test's own (never the shared
one on :19042), players posting events throughout. While the node is down the edge acknowledges
events once they are in its spool on disk; the node is started again over the same data, the
driver reconnects (its backoff capped at RECONNECT_MAX_DELAY_S, streamer.cql.connection) and
the spool replays. Counted: acknowledged events not in the store (those acknowledged before the
kill included: Cassandra acknowledged them from its commit log), plays counted twice, and the
time from the node answering CQL again until every acknowledged event is in the store.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cdn_edge.telemetry.spooling_sink import REPLAY_BACKOFF_MAX_S
from streamer.cql.connection import RECONNECT_MAX_DELAY_S, open_cql_session
from streamer.cql.schema import migrate
from streamer.sessions.scylla import ScyllaSessionStore
from streamer.settings import Settings, load_settings
from tests.chaos import figures
from tests.chaos.counts import count
from tests.chaos.edge import TRACK_ID, EdgeProcess, edge_env, published_world
from tests.chaos.players import Load
from tests.chaos.private_cassandra import PrivateCassandra
from tests.chaos.test_edge_worker_kill import wait_for
from tests.chaos.test_telemetry_writer_kill import spooled_bytes

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.timeout(480)]

KEYSPACE = "chaos_cassandra"
EVENTS_BEFORE = 40  # acknowledged with the node up
EVENTS_DURING = 40  # acknowledged with the node down: spooled
# After the node answers CQL: the driver's next reconnect (at most its cap), then the spool's
# next replay (at most REPLAY_BACKOFF_MAX_S); the slack covers a loaded two-core machine.
REPLAY_SLACK_S = 15.0
RECOVER_DEADLINE_S = RECONNECT_MAX_DELAY_S + REPLAY_BACKOFF_MAX_S + REPLAY_SLACK_S
LATE_S = 60.0  # on a failure, how much longer to wait to tell events late from events lost


@pytest.fixture
def node(tmp_path: Path) -> Iterator[PrivateCassandra]:
    cassandra = PrivateCassandra(tmp_path / "cassandra")
    cassandra.start()
    try:
        yield cassandra
    finally:
        cassandra.stop()


def node_settings(node: PrivateCassandra) -> Settings:
    return load_settings(
        environ={},
        cql_hosts="127.0.0.1",
        cql_port=node.cql_port,
        cql_keyspace=KEYSPACE,
        cql_consistency="ONE",
    )


def acked_ids(load: Load) -> set[str]:
    return {event_id for player in list(load.all) for event_id in set(player.acked)}


def stored_ids(store: ScyllaSessionStore, load: Load) -> set[str]:
    return {
        event.event_id
        for player in list(load.all)
        if player.session_id
        for event in store.session_telemetry(player.session_id).events
    }


def test_cassandra_killed_under_load(node: PrivateCassandra, tmp_path: Path) -> None:
    settings = node_settings(node)
    migrate(settings)
    world = published_world(tmp_path / "data")
    env = edge_env(
        world,
        session_store="scylla",
        cql_hosts="127.0.0.1",
        cql_port=str(node.cql_port),
        cql_keyspace=KEYSPACE,
        cql_consistency="ONE",
    )
    edge = EdgeProcess(["serve", "--segments", "python"], env, tmp_path / "serve.log")
    edge.start()
    try:
        with Load(edge.base, world.secrets, TRACK_ID, players=4, interval_s=0.05) as load:
            wait_for("events acknowledged with the node up", lambda: load.acked >= EVENTS_BEFORE)
            killed_at = node.kill()
            before = load.acked
            acked_before_kill = acked_ids(load)
            wait_for(
                "events spooled with the node down",
                lambda: (
                    load.acked >= before + EVENTS_DURING
                    and spooled_bytes(world.settings.data_dir) > 0
                ),
                60.0,
            )
            acked_while_down = load.acked - before
            acked_before_restart = acked_ids(load)
            restart_s = node.start()
            ready_at = time.monotonic()
            with open_cql_session(settings) as session:
                store = ScyllaSessionStore(session)
                try:
                    wait_for(
                        "every acknowledged event in the store",
                        lambda: count(store, load.all, TRACK_ID).lost == 0,
                        RECOVER_DEADLINE_S,
                    )
                except AssertionError as exc:
                    missing = acked_ids(load) - stored_ids(store, load)
                    time.sleep(LATE_S)
                    lost = missing - stored_ids(store, load)
                    raise AssertionError(
                        f"{exc}: {len(missing)} missing, of which"
                        f" {len(missing & acked_before_kill)} acknowledged before the kill and"
                        f" {len(missing & (acked_before_restart - acked_before_kill))} while the"
                        f" node was down; {len(lost)} still missing {LATE_S:g} s later"
                        f" ({len(lost & acked_before_kill)} acknowledged before the kill)"
                    ) from exc
                recover_s = time.monotonic() - ready_at
                down_s = ready_at - killed_at
                # Still taking events after the recovery, straight into the store.
                after = load.acked
                wait_for("events acknowledged after the restart", lambda: load.acked >= after + 20)
        load.flush()
    finally:
        edge.stop()

    with open_cql_session(settings) as session:
        counts = count(ScyllaSessionStore(session), load.all, TRACK_ID)
    figures.record(
        "Cassandra (edge over CQL, spool on)",
        lost=counts.lost,
        double_counted=counts.double_counted,
        recover_s=recover_s,
        acked=counts.acked,
        acked_while_down=acked_while_down,
        plays=counts.plays_counted,
        node_down_s=round(down_s, 1),
        node_restart_s=round(restart_s, 1),
    )
    assert edge.starts == 1  # the edge itself never went down
    assert counts.duplicated == 0
    assert counts.lost == 0, f"{counts.lost} of {counts.acked} acknowledged events were lost"
    assert counts.double_counted == 0, counts
    assert counts.sessions_with_play > 0, counts
    assert recover_s <= RECOVER_DEADLINE_S
