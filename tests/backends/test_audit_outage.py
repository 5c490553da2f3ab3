"""The audit log rides out a Cassandra outage: entries spooled while it is cut, none lost.

The CQL server is shared and never stopped: the recorder reaches it through a TcpProxy that
the test cuts and restores (as tests/backends/test_telemetry_outage.py does).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from cdn_edge.audit_writer import AuditMetrics, AuditWriter
from streamer.audit.recorder import AuditRecorder
from streamer.audit.scylla import ScyllaAuditLog
from streamer.audit.spool import AuditSpool
from streamer.audit.verify import verify_log
from streamer.settings import Settings
from tests.backends.cql_fixtures import TestKeyspace, drop_cql_test_keyspace, shared_test_keyspace
from tests.backends.tcp_proxy import HOST, TcpProxy, tcp_proxy
from tests.contract.audit_logs import AUDIT_TABLES, KEY, event

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.timeout(90)]

__all__ = ["drop_cql_test_keyspace"]  # a session fixture: drops the test keyspace at the end

DEADLINE_S = 40.0  # the driver reconnects within ~10 s (RECONNECT_MAX_DELAY_S)
STREAM = "edge.outage.w0"


@pytest.fixture
def keyspace() -> TestKeyspace:
    shared = shared_test_keyspace()
    shared.truncate(AUDIT_TABLES)
    return shared


@pytest.fixture
def proxy(keyspace: TestKeyspace) -> Iterator[TcpProxy]:
    host = keyspace.settings.cql_hosts.split(",")[0].strip()
    with tcp_proxy(host, keyspace.settings.cql_port) as proxy:
        yield proxy


@pytest.fixture
def settings(keyspace: TestKeyspace, proxy: TcpProxy, tmp_path: Path) -> Settings:
    return dataclasses.replace(
        keyspace.settings, cql_hosts=HOST, cql_port=proxy.port, data_dir=tmp_path / "data"
    )


async def test_entries_recorded_during_an_outage_reach_the_store_once(
    settings: Settings, keyspace: TestKeyspace, proxy: TcpProxy, tmp_path: Path
) -> None:
    recorder = AuditRecorder(
        lambda: ScyllaAuditLog.from_settings(settings),
        KEY,
        STREAM,
        AuditSpool(tmp_path / "spool", STREAM),
    )
    writer = AuditWriter(recorder, AuditMetrics(CollectorRegistry()), time.monotonic)
    for n in range(3):
        writer.record(event(n))
    assert await writer.flush() == 3
    assert not recorder.has_spooled()

    proxy.cut()
    for n in range(3, 8):
        writer.record(event(n))  # never raises, never waits: playback is not held
    assert await writer.flush() == 5  # kept, on disk
    assert recorder.has_spooled()
    proxy.restore()

    deadline = time.monotonic() + DEADLINE_S
    while recorder.has_spooled():
        assert time.monotonic() < deadline, "the spool was not replayed after the store returned"
        writer._next_replay = 0.0  # do not wait out the replay interval
        await writer.replay()
        await asyncio.sleep(0.5)
    writer.record(event(8))
    assert await writer.flush() == 1
    await writer.close()

    direct = ScyllaAuditLog(keyspace.session)  # not through the proxy
    numbers = [entry.event.details["n"] for entry in direct.entries(STREAM)]
    assert sorted(numbers) == list(range(9)) and len(numbers) == 9  # each exactly once
    report = verify_log(direct, KEY)
    assert report.problems == () and report.checked == 9
