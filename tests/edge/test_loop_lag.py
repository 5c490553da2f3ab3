"""The event-loop lag probe: a held loop is measured and logged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest
from prometheus_client import CollectorRegistry, Histogram

from cdn_edge.loop_lag import watch_loop_lag
from cdn_edge.metrics import LOOP_LAG_BUCKETS


async def test_a_held_loop_is_observed_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    lag = Histogram("lag_seconds", "lag", buckets=LOOP_LAG_BUCKETS, registry=registry)
    watcher = asyncio.create_task(watch_loop_lag(lag, interval_s=0.02))
    with caplog.at_level(logging.WARNING, logger="cdn_edge.loop_lag"):
        await asyncio.sleep(0.1)  # a few quiet samples
        time.sleep(0.4)  # noqa: ASYNC251 - deliberately holding the loop, as a stall does
        await asyncio.sleep(0.1)
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher

    def count(le: str) -> float:
        value = registry.get_sample_value("lag_seconds_bucket", {"le": le})
        assert value is not None
        return value

    total = registry.get_sample_value("lag_seconds_count")
    assert total is not None and total >= 4
    assert total - count("0.25") == 1  # the one stall, and nothing else that long
    assert count("0.05") >= total - 2  # the quiet samples were quick
    stalls = [r for r in caplog.records if "event loop stalled" in r.getMessage()]
    assert len(stalls) == 1 and 300 <= stalls[0].lag_ms <= 600  # type: ignore[attr-defined]
