"""The durable telemetry spool: order, recovery of torn and corrupt files, the size bound,
group commit, and the edge's spooling sink and replayer in front of a store that fails."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from cdn_edge.app import create_app
from cdn_edge.state import METRICS, TELEMETRY
from cdn_edge.telemetry.spooling_sink import (
    REPLAY_BACKOFF_MAX_S,
    REPLAYER,
    SpoolingSink,
    SpoolMetrics,
    SpoolReplayer,
)
from cdn_edge.telemetry.writer import BACKOFF_INITIAL_S, BACKOFF_MAX_S
from drm import KeyRing
from streamer.errors import StorageError
from streamer.settings import Settings
from streamer.telemetry.codec import decode_items, encode_items
from streamer.telemetry.model import CmcdSample, PlayClaim, PlayerEvent, TelemetryItem
from streamer.telemetry.spool import (
    MAGIC,
    SpooledBatch,
    SpoolFull,
    TelemetrySpool,
    adopt_orphan_spools,
    frame,
    worker_spool_dir,
)
from streamer.token_secrets import TokenSecrets
from tests.edge.builders import CountingReader
from tests.edge.conftest import Client, ManualClock
from tests.telemetry.builders import deliveries, event, listening
from tests.telemetry.conftest import FlakyStore, OpenPlayback

SAMPLE = CmcdSample("s1", "x1", 1_700_000_000_000, "segment", "aac_96/seg_00001.m4s", 200,
                    {"br": 96, "bs": True, "pr": 1.25, "sid": "6e2f"})  # fmt: skip


def batch(n: int, size: int = 3) -> list[TelemetryItem]:
    """A recognisable batch: `size` heartbeats whose positions say which batch they are."""
    return [event("heartbeat", n, float(n * 100 + i), event_id=f"b{n}-{i}") for i in range(size)]


def record_bytes(*numbers: int) -> int:
    return sum(len(frame(encode_items(batch(n)))) for n in numbers)


def two_records_a_segment() -> int:
    """A segment size that takes two of the test's records, never three."""
    sizes = [record_bytes(n) for n in range(200)]
    return len(MAGIC) + 2 * max(sizes) + min(sizes) // 2


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.spool"))


def drain(spool: TelemetrySpool) -> list[list[TelemetryItem]]:
    out = []
    while (got := spool.peek()) is not None:
        out.append(list(got.items))
        spool.ack(got)
    return out


@pytest.fixture
def spool(tmp_path: Path) -> TelemetrySpool:
    opened = TelemetrySpool(tmp_path / "spool")
    opened.open()
    return opened


def test_items_of_every_kind_round_trip() -> None:
    items = [*listening(40), *deliveries(2), SAMPLE]
    assert list(decode_items(encode_items(items))) == items
    with pytest.raises(TypeError, match="PlayClaim is not a telemetry item"):
        encode_items([PlayClaim("s1", "trk1", date(2023, 11, 14), 1_700_000_000_000)])  # type: ignore[list-item]


def test_batches_come_back_in_order_and_the_spool_empties(spool: TelemetrySpool) -> None:
    for n in range(5):
        spool.append(batch(n))
    assert spool.pending == 5 and spool.bytes_on_disk > 0
    assert drain(spool) == [batch(n) for n in range(5)]
    assert spool.is_empty() and spool.bytes_on_disk == 0
    assert list(spool.directory.iterdir()) == []  # segments and cursor gone


def test_peek_without_ack_repeats_and_acks_must_be_in_order(spool: TelemetrySpool) -> None:
    spool.append(batch(0))
    spool.append(batch(1))
    first = spool.peek()
    assert first is not None and spool.peek() == first
    second = SpooledBatch(first.items, first.segment, first.end, first.end + 1)
    with pytest.raises(ValueError, match="oldest"):
        spool.ack(second)


def test_a_restart_replays_what_was_not_acknowledged(tmp_path: Path) -> None:
    before = TelemetrySpool(tmp_path / "spool")
    for n in range(4):
        before.append(batch(n))
    replayed = before.peek()
    assert replayed is not None
    before.ack(replayed)
    before.close()
    with pytest.raises(StorageError, match="closed"):
        before.append(batch(9))

    after = TelemetrySpool(tmp_path / "spool")
    after.open()
    assert after.pending == 3
    after.append(batch(4))  # behind the recovered ones
    assert drain(after) == [batch(n) for n in range(1, 5)]


def test_a_lost_cursor_replays_everything_again(tmp_path: Path) -> None:
    before = TelemetrySpool(tmp_path / "spool")
    for n in range(3):
        before.append(batch(n))
    got = before.peek()
    assert got is not None
    before.ack(got)
    before.close()
    (tmp_path / "spool" / "cursor").write_text("garbage")
    after = TelemetrySpool(tmp_path / "spool")
    assert drain(after) == [batch(n) for n in range(3)]  # a repeat is harmless to the store


def test_a_torn_tail_is_detected_and_truncated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = TelemetrySpool(tmp_path / "spool")
    before.append(batch(0))
    before.append(batch(1))
    before.close()
    (path,) = segments(tmp_path / "spool")
    good = path.stat().st_size
    torn = frame(encode_items(batch(2)))[:-7]  # the process died mid-write
    with path.open("ab") as handle:
        handle.write(torn)

    after = TelemetrySpool(tmp_path / "spool")
    with caplog.at_level(logging.WARNING, "streamer.telemetry.spool"):
        after.open()
    assert path.stat().st_size == good
    assert after.pending == 2 and after.lost_bytes == len(torn)
    assert "torn write" in caplog.text
    after.append(batch(3))  # appends go on after the cut
    assert drain(after) == [batch(0), batch(1), batch(3)]


def test_a_checksum_mismatch_in_the_last_record_is_cut(tmp_path: Path) -> None:
    before = TelemetrySpool(tmp_path / "spool")
    before.append(batch(0))
    before.append(batch(1))
    before.close()
    (path,) = segments(tmp_path / "spool")
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF  # a flipped bit in the last record's payload
    path.write_bytes(bytes(data))
    after = TelemetrySpool(tmp_path / "spool")
    assert drain(after) == [batch(0)]
    assert after.lost_bytes > 0


def test_corruption_in_an_older_segment_is_cut_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = TelemetrySpool(tmp_path / "spool", segment_bytes=two_records_a_segment())
    for n in range(4):
        before.append(batch(n))
    before.close()
    first, _ = segments(tmp_path / "spool")
    data = bytearray(first.read_bytes())
    data[len(MAGIC) + record_bytes(0) + 12] ^= 0xFF  # inside the first segment's 2nd record
    first.write_bytes(bytes(data))
    after = TelemetrySpool(tmp_path / "spool")
    with caplog.at_level(logging.ERROR, "streamer.telemetry.spool"):
        after.open()
    assert "corrupt" in caplog.text
    assert drain(after) == [batch(0), batch(2), batch(3)]


def test_a_record_that_does_not_decode_is_skipped_and_counted(spool: TelemetrySpool) -> None:
    spool.append(batch(0))
    assert spool._write is not None  # write a well-framed record of nonsense behind it
    os.write(spool._write[1], frame(b"not zlib"))
    spool.close()
    after = TelemetrySpool(spool.directory)
    after.append(batch(1))
    assert drain(after) == [batch(0), batch(1)]
    assert after.lost_records == 1


def test_a_segment_without_the_header_is_moved_aside(tmp_path: Path) -> None:
    directory = tmp_path / "spool"
    directory.mkdir()
    (directory / f"{1:016d}.spool").write_bytes(b"something else entirely")
    spool = TelemetrySpool(directory)
    assert spool.is_empty()
    assert [p.name for p in directory.iterdir()] == [f"{1:016d}.corrupt"]


def test_segments_rotate_and_are_deleted_once_replayed(tmp_path: Path) -> None:
    spool = TelemetrySpool(tmp_path / "spool", segment_bytes=two_records_a_segment())
    for n in range(6):
        spool.append(batch(n))
    assert len(segments(spool.directory)) == 3
    for n in range(3):
        got = spool.peek()
        assert got is not None and list(got.items) == batch(n)
        spool.ack(got)
    assert len(segments(spool.directory)) == 2  # the first is replayed and gone
    assert spool.bytes_on_disk == sum(p.stat().st_size for p in segments(spool.directory))
    assert drain(spool) == [batch(n) for n in range(3, 6)]


def test_the_size_is_bounded_and_the_alarm_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = TelemetrySpool(tmp_path / "spool", max_bytes=len(MAGIC) + record_bytes(*range(10)))
    with caplog.at_level(logging.WARNING, "streamer.telemetry.spool"):
        for n in range(10):
            spool.append(batch(n))
    assert spool.alarm and "% full" in caplog.text
    held = spool.bytes_on_disk
    with pytest.raises(SpoolFull, match="cannot take"):
        spool.append(batch(10))
    assert spool.bytes_on_disk == held and spool.pending == 10  # nothing partial
    assert spool.bytes_on_disk == sum(p.stat().st_size for p in segments(spool.directory))
    assert drain(spool)[-1] == batch(9)
    assert not spool.alarm
    spool.append(batch(10))  # room again


def test_concurrent_appends_share_fsyncs(tmp_path: Path) -> None:
    calls: list[int] = []

    def slow_fsync(fd: int) -> None:
        time.sleep(0.02)  # a disk flush: others queue up behind it
        calls.append(fd)
        os.fsync(fd)

    spool = TelemetrySpool(tmp_path / "spool", fsync=slow_fsync)
    spool.open()
    spool.append(batch(0))  # creates the segment (its own fsyncs) and commits alone
    assert spool.fsyncs == 1
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def append(worker: int) -> None:
        try:
            start.wait(timeout=10)
            for n in range(5):
                spool.append(batch(100 + worker * 10 + n))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=append, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert spool.pending == 41
    assert 1 < spool.fsyncs < 41  # 40 appends, far fewer commits
    replayed = drain(spool)
    assert len(replayed) == 41
    ids = [item.event_id for b in replayed for item in b[:1] if isinstance(item, PlayerEvent)]
    for worker in range(8):  # each appender's own batches stay in its order
        expected = [f"b{100 + worker * 10 + n}-0" for n in range(5)]
        assert [i for i in ids if i in expected] == expected


def test_sequential_appends_are_each_durable(tmp_path: Path) -> None:
    synced: list[int] = []

    def fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_size)
        os.fsync(fd)

    spool = TelemetrySpool(tmp_path / "spool", fsync=fsync)
    for n in range(3):
        spool.append(batch(n))
        (path,) = segments(spool.directory)
        assert synced[-1] == path.stat().st_size  # the last fsync covered this record


# The edge's sink and replayer.


class Store:
    """A TelemetrySink that fails while `down`, or blocks on `gate`."""

    def __init__(self) -> None:
        self.batches: list[list[TelemetryItem]] = []
        self.down = False
        self.gate = threading.Event()
        self.gate.set()

    def write_batch(self, items: Sequence[TelemetryItem]) -> None:
        assert self.gate.wait(timeout=10)
        if self.down:
            raise StorageError("the test store is down")
        self.batches.append(list(items))


async def no_sleep(delay: float) -> None:
    await asyncio.sleep(0)


@pytest.fixture
def metrics() -> SpoolMetrics:
    return SpoolMetrics(CollectorRegistry())


async def test_the_sink_spools_while_the_store_is_down_and_replays_in_order(
    spool: TelemetrySpool, metrics: SpoolMetrics
) -> None:
    store = Store()
    sink = SpoolingSink(store, spool, metrics)
    replayer = SpoolReplayer(sink, metrics, sleep=no_sleep)
    sink.write_batch(batch(0))  # straight through
    store.down = True
    for n in (1, 2):
        await asyncio.to_thread(sink.write_batch, batch(n))
    assert spool.pending == 2 and store.batches == [batch(0)]
    with pytest.raises(StorageError):
        await replayer.replay_one()
    store.down = False
    await asyncio.to_thread(sink.write_batch, batch(3))  # behind the spooled ones, not before
    assert spool.pending == 3
    while await replayer.replay_one():
        pass
    assert store.batches == [batch(n) for n in range(4)]
    await asyncio.to_thread(sink.write_batch, batch(4))  # empty again: straight through
    assert store.batches[-1] == batch(4) and spool.is_empty()
    sink.close()


async def test_a_slow_store_gets_the_spool_instead(
    spool: TelemetrySpool, metrics: SpoolMetrics
) -> None:
    store = Store()
    sink = SpoolingSink(store, spool, metrics, direct_timeout_s=0.05)
    store.gate.clear()
    await asyncio.to_thread(sink.write_batch, batch(0))  # gives up waiting after 50 ms
    await asyncio.to_thread(sink.write_batch, batch(1))  # the store is still busy: spooled
    assert spool.pending == 2
    store.gate.set()
    replayer = SpoolReplayer(sink, metrics, sleep=no_sleep)
    while await replayer.replay_one():
        pass
    # The first batch reached the store twice (the slow call finished, then its replay).
    assert store.batches == [batch(0), batch(0), batch(1)]
    sink.close()


async def test_a_replay_that_outlives_its_timeout_is_waited_for_not_repeated(
    spool: TelemetrySpool, metrics: SpoolMetrics
) -> None:
    store = Store()
    sink = SpoolingSink(store, spool, metrics)
    spool.append(batch(0))
    store.gate.clear()
    replayer = SpoolReplayer(sink, metrics, sleep=no_sleep, replay_timeout_s=0.05)
    for _ in range(3):
        with pytest.raises(TimeoutError):
            await replayer.replay_one()
    store.gate.set()
    assert await replayer.replay_one()
    assert store.batches == [batch(0)]  # one call, however many attempts waited for it
    assert spool.is_empty()
    sink.close()


async def test_the_background_replayer_drains_after_a_wake_up(
    spool: TelemetrySpool, metrics: SpoolMetrics
) -> None:
    store = Store()
    store.down = True
    sink = SpoolingSink(store, spool, metrics)
    replayer = SpoolReplayer(sink, metrics, sleep=no_sleep)
    replayer.start()
    await asyncio.to_thread(sink.write_batch, batch(0))
    store.down = False
    for _ in range(200):
        if not spool.pending:
            break
        await asyncio.sleep(0.01)
    assert store.batches == [batch(0)]
    await replayer.stop()
    replayer.close()


async def test_stop_ends_the_replayer_while_the_store_fails_at_once(
    spool: TelemetrySpool, metrics: SpoolMetrics
) -> None:
    """A down store refuses each replay at once, so stops often land as a call ends. On 3.11,
    asyncio.wait_for then raised the store's error instead of the cancellation, the replayer
    backed off and ran on, and the edge's shutdown hung (CI's spool-restart test)."""
    refused = threading.Event()

    class RefusingStore:
        def write_batch(self, items: Sequence[TelemetryItem]) -> None:
            refused.set()
            raise StorageError("the test store is down")

    sink = SpoolingSink(RefusingStore(), spool, metrics)
    spool.append(batch(0))

    async def long_back_off(delay: float) -> None:
        await asyncio.sleep(60)

    for attempt in range(100):
        replayer = SpoolReplayer(sink, metrics, sleep=long_back_off)
        refused.clear()
        replayer.start()
        # Blocking on purpose: the store's thread ends its call and hands the outcome to the
        # loop while the loop is held here; the yields below then let the stop land at each
        # step of the outcome's delivery to the replayer.
        while not refused.wait(0.001):  # noqa: ASYNC110
            await asyncio.sleep(0)
        time.sleep(0.001)  # noqa: ASYNC251
        for _ in range(attempt % 10):
            await asyncio.sleep(0)
        async with asyncio.timeout(5):  # a swallowed stop waits out the back-off
            await replayer.stop()
    assert spool.pending == 1
    sink.close()


async def test_the_replayer_backs_off_but_never_past_its_cap(
    spool: TelemetrySpool, metrics: SpoolMetrics
) -> None:
    """A store down for long: the replayer still tries every REPLAY_BACKOFF_MAX_S, so a
    store that comes back is written to within that (the writer's own cap is 30 s)."""
    store = Store()
    store.down = True
    sink = SpoolingSink(store, spool, metrics)
    waits: list[float] = []
    came_back = asyncio.Event()

    async def recorded_sleep(delay: float) -> None:
        waits.append(delay)
        if len(waits) == 12:
            store.down = False
            came_back.set()
        await asyncio.sleep(0)

    replayer = SpoolReplayer(sink, metrics, sleep=recorded_sleep)
    spool.append(batch(0))
    replayer.start()
    await asyncio.wait_for(came_back.wait(), 10)
    for _ in range(200):
        if not spool.pending:
            break
        await asyncio.sleep(0.01)

    assert store.batches == [batch(0)]
    assert waits[0] == BACKOFF_INITIAL_S
    assert waits == sorted(waits)  # exponential, then flat
    assert max(waits) == REPLAY_BACKOFF_MAX_S < BACKOFF_MAX_S
    await replayer.stop()
    replayer.close()


# Over HTTP: the events API in front of a store that is down.

QUEUE = 6


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, telemetry_queue_events=QUEUE)


@pytest.fixture
def spool_bytes() -> int:
    return 100 * 1024


@pytest.fixture
def edge_app(
    settings: Settings,
    reader: CountingReader,
    session_store: FlakyStore,
    ring: KeyRing,
    clock: ManualClock,
    edge_secrets: TokenSecrets,
    hls_dir: Path,
    spool_bytes: int,
) -> web.Application:
    spool = TelemetrySpool(settings.data_dir / "spool", max_bytes=spool_bytes)
    return create_app(
        settings, reader, session_store, ring,
        clock=clock, secrets=edge_secrets, hls_dir=hls_dir, spool=spool,
    )  # fmt: skip


def heartbeats(clock: ManualClock, first: int, count: int) -> list[dict[str, Any]]:
    now = int(clock() * 1000)
    return [
        {"event_id": f"hb-{n}", "type": "heartbeat", "ts_ms": now + n * 1000, "position_s": n}
        for n in range(first, first + count)
    ]


async def test_events_go_to_the_spool_while_the_store_is_down(
    client: Client,
    open_playback: OpenPlayback,
    session_store: FlakyStore,
    edge_app: web.Application,
    clock: ManualClock,
) -> None:
    pb = await open_playback()
    session_store.down = True
    path = f"/v1/sessions/{pb.doc['session_id']}/events"
    auth = {"Authorization": f"Bearer {pb.token}"}
    writer, replayer = edge_app[TELEMETRY], edge_app[REPLAYER]
    assert replayer is not None
    await replayer.stop()  # this test replays by hand
    for first in range(0, 40, 4):  # far more than the memory queue holds
        response = await client.post(
            path, json={"events": heartbeats(clock, first, 4)}, headers=auth
        )
        assert response.status == 202
        assert writer.held == 0  # acknowledged once in the spool
    registry = edge_app[METRICS].registry
    assert registry.get_sample_value("edge_telemetry_spool_batches") == 10
    assert (registry.get_sample_value("edge_telemetry_spool_bytes") or 0) > 0
    assert registry.get_sample_value("edge_telemetry_spooled_total", {"kind": "event"}) == 40

    session_store.down = False
    while await replayer.replay_one():
        pass
    stored = session_store.inner.session_telemetry(pb.doc["session_id"]).events
    assert [e.event_id for e in stored] == [f"hb-{n}" for n in range(40)]
    assert registry.get_sample_value("edge_telemetry_spool_bytes") == 0


@pytest.mark.parametrize("spool_bytes", [400])
async def test_a_full_spool_makes_the_events_api_answer_429(
    client: Client,
    open_playback: OpenPlayback,
    session_store: FlakyStore,
    edge_app: web.Application,
    clock: ManualClock,
) -> None:
    pb = await open_playback()
    session_store.down = True
    path = f"/v1/sessions/{pb.doc['session_id']}/events"
    auth = {"Authorization": f"Bearer {pb.token}"}
    writer = edge_app[TELEMETRY]
    writer.durable_wait_s = 1.0
    response = await client.post(path, json={"events": heartbeats(clock, 0, 3)}, headers=auth)
    assert response.status == 202  # spooled: one record fills most of 400 bytes
    assert writer.held == 0
    response = await client.post(path, json={"events": heartbeats(clock, 3, 3)}, headers=auth)
    assert response.status == 503  # the spool is full: kept in memory, not acknowledged
    assert writer.held == 3
    response = await client.post(path, json={"events": heartbeats(clock, 6, 4)}, headers=auth)
    assert response.status == 429  # the queue (6) holds 3; 4 more do not fit: refused, not lost
    assert int(response.headers["Retry-After"]) >= 1

    session_store.down = False
    for _ in range(500):  # the replayer frees the spool; the writer's retry then lands
        clock.advance(60)
        await writer.flush()
        if not writer.held and edge_app[REPLAYER].spool.is_empty():  # type: ignore[union-attr]
            break
        await asyncio.sleep(0.01)
    stored = session_store.inner.session_telemetry(pb.doc["session_id"]).events
    assert [e.event_id for e in stored] == [f"hb-{n}" for n in range(6)]


def test_a_segment_replayed_to_its_end_before_a_restart_is_deleted(tmp_path: Path) -> None:
    before = TelemetrySpool(tmp_path / "spool", segment_bytes=two_records_a_segment())
    for n in range(4):
        before.append(batch(n))
    before.close()
    first, _ = segments(tmp_path / "spool")
    # The process stopped after moving the cursor to the end of the first segment, before
    # deleting it.
    (tmp_path / "spool" / "cursor").write_text(f"{int(first.stem)} {first.stat().st_size}\n")
    after = TelemetrySpool(tmp_path / "spool", segment_bytes=two_records_a_segment())
    after.open()
    assert len(segments(after.directory)) == 1
    assert after.bytes_on_disk == segments(after.directory)[0].stat().st_size
    assert drain(after) == [batch(2), batch(3)]


def _left_behind(directory: Path, numbers: range, replayed: int = 0) -> None:
    """A spool a stopped process left: batches `numbers`, the first `replayed` acknowledged."""
    spool = TelemetrySpool(directory, segment_bytes=two_records_a_segment())
    for n in numbers:
        spool.append(batch(n))
    for _ in range(replayed):
        got = spool.peek()
        assert got is not None
        spool.ack(got)
    spool.close()


def test_spools_of_workers_that_no_longer_run_are_adopted(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    # A run with three workers stopped with the store down; the next has two.
    _left_behind(worker_spool_dir(root, 0), range(0, 2))
    _left_behind(worker_spool_dir(root, 1), range(10, 12))
    _left_behind(worker_spool_dir(root, 2), range(20, 25), replayed=3)
    assert adopt_orphan_spools(root, workers=2) > 0
    assert not worker_spool_dir(root, 2).exists()
    assert drain(TelemetrySpool(worker_spool_dir(root, 1))) == [batch(n) for n in range(10, 12)]
    # Worker 2's went to worker 0 (2 % 2), after its own. Its first segment (batches 20 and
    # 21) was replayed whole and is gone; its cursor's segment comes again from the start.
    adopted = drain(TelemetrySpool(worker_spool_dir(root, 0)))
    assert adopted == [batch(n) for n in (0, 1, 22, 23, 24)]


def test_a_spool_from_before_per_worker_directories_goes_to_worker_0(tmp_path: Path) -> None:
    root = tmp_path / "spool"
    _left_behind(root, range(3))
    assert adopt_orphan_spools(root, workers=1) >= 1
    assert list(root.glob("*.spool")) == [] and not (root / "cursor").exists()
    assert drain(TelemetrySpool(worker_spool_dir(root, 0))) == [batch(n) for n in range(3)]
    assert adopt_orphan_spools(root, workers=1) == 0  # nothing left to adopt
    assert adopt_orphan_spools(tmp_path / "never-made", workers=4) == 0
