"""The edge's periodic play recount: drifted counts repaired, failures logged, the task wired
into the first worker's app."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

import cdn_edge.telemetry.play_recounts as play_recounts
from cdn_edge.app import create_app
from cdn_edge.blocking import BlockingRunner
from cdn_edge.telemetry.play_recounts import PlayRecounter
from drm import KeyRing
from streamer.errors import ConfigError
from streamer.sessions.port import PlayRecount
from streamer.sessions.recount import RECOUNT_WINDOW_DAYS
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.settings import Settings, load_settings
from streamer.token_secrets import TokenSecrets
from tests.contract.session_stores import drift, play
from tests.edge.conftest import Client, ManualClock
from tests.telemetry.conftest import FlakyStore


def today(clock: ManualClock) -> datetime:
    return datetime.fromtimestamp(clock(), UTC)


@pytest.fixture
def ledger(tmp_path: Path) -> FlakyStore:
    return FlakyStore(tmp_path / "sessions.sqlite3")


@pytest.fixture
def blocking() -> Iterator[BlockingRunner]:
    runner = BlockingRunner()
    yield runner
    runner.close()


async def test_a_sweep_repairs_the_drifted_counts_of_the_recent_days(
    ledger: FlakyStore,
    blocking: BlockingRunner,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = today(clock).date()
    oldest = now - timedelta(days=RECOUNT_WINDOW_DAYS - 1)  # an offline play's day
    too_old = oldest - timedelta(days=1)
    ledger.claim_plays([play("a", day=now), play("b", day=oldest), play("c", day=too_old)])
    for day in (now, oldest, too_old):
        drift(ledger.inner, "trk1", day, +1, marked=True)
    recounter = PlayRecounter(ledger, blocking, clock, 3600.0)

    with caplog.at_level(logging.WARNING):
        sweep = await recounter.sweep()
    assert sweep.failures == ()
    assert sweep.corrected == (
        PlayRecount("trk1", now, 2, 1),
        PlayRecount("trk1", oldest, 2, 1),
    )
    assert ledger.plays_by_day("trk1", too_old, now) == {too_old: 2, oldest: 1, now: 1}
    assert "play recount corrected 2 counts" in caplog.text
    assert (await recounter.sweep()).recounts == ()


async def test_a_store_down_is_logged_and_swept_next_time(
    ledger: FlakyStore,
    blocking: BlockingRunner,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = today(clock).date()
    ledger.claim_plays([play("a", day=now)])
    drift(ledger.inner, "trk1", now, -1, marked=True)
    recounter = PlayRecounter(ledger, blocking, clock, 3600.0)
    ledger.down = True
    with caplog.at_level(logging.ERROR):
        sweep = await recounter.sweep()
    assert len(sweep.failures) == RECOUNT_WINDOW_DAYS and sweep.recounts == ()
    assert "play recount incomplete, tried again in 3600 s" in caplog.text
    ledger.down = False
    assert (await recounter.sweep()).corrected == (PlayRecount("trk1", now, 0, 1),)


async def test_the_task_waits_then_sweeps_every_interval(
    ledger: FlakyStore, blocking: BlockingRunner, clock: ManualClock
) -> None:
    slept: list[float] = []
    swept = asyncio.Event()

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 3:
            swept.set()
            await asyncio.Event().wait()  # until cancelled

    recounter = PlayRecounter(ledger, blocking, clock, 900.0, sleep=sleep)
    task = asyncio.create_task(recounter.run())
    await asyncio.wait_for(swept.wait(), 10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert slept == [play_recounts.FIRST_AFTER_S, 900.0, 900.0]
    with pytest.raises(ValueError, match="interval"):
        PlayRecounter(ledger, blocking, clock, 0.0)


async def test_the_first_workers_edge_repairs_a_drifted_count(
    aiohttp_client,
    settings: Settings,
    reader: object,
    ring: KeyRing,
    clock: ManualClock,
    edge_secrets: TokenSecrets,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(play_recounts, "FIRST_AFTER_S", 0.0)
    store = SQLiteSessionStore(tmp_path / "sessions.sqlite3")
    now = today(clock).date()
    store.claim_plays([play("a", day=now), play("b", day=now)])
    drift(store, "trk1", now, -1, marked=True)

    def app(play_recounts: bool) -> web.Application:  # a worker, with its own connection
        return create_app(
            dataclasses.replace(settings, play_recount_interval_s=0.05),
            reader,  # type: ignore[arg-type]
            SQLiteSessionStore(store.path),
            ring,
            clock=clock,
            secrets=edge_secrets,
            play_recounts=play_recounts,
        )

    other: Client = await aiohttp_client(app(play_recounts=False))
    await asyncio.sleep(0.3)
    assert store.plays_by_day("trk1", now, now) == {now: 1}  # other workers leave it
    await other.close()

    first: Client = await aiohttp_client(app(play_recounts=True))
    for _ in range(100):
        if store.plays_by_day("trk1", now, now) == {now: 2}:
            break
        await asyncio.sleep(0.05)
    assert store.plays_by_day("trk1", now, now) == {now: 2}
    await first.close()


def test_the_interval_setting_is_checked() -> None:
    assert load_settings(environ={}).play_recount_interval_s == 3600.0
    off = load_settings(environ={"STREAMER_PLAY_RECOUNT_INTERVAL_S": "0"})
    assert off.play_recount_interval_s == 0.0
    with pytest.raises(ConfigError, match=r"STREAMER_PLAY_RECOUNT_INTERVAL_S is -1\.0"):
        load_settings(environ={"STREAMER_PLAY_RECOUNT_INTERVAL_S": "-1"})
