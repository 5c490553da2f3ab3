"""The shipper's loop: outages are waited out without skipping or advancing, garbage is
counted and skipped, and the position moves only after the store write."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdn_edge.logship.offsets import LogPosition, OffsetFile
from cdn_edge.logship.shipper import Shipper
from cdn_edge.logship.stats import render_metrics
from cdn_edge.logship.tailer import LogTailer
from cdn_edge.logship.timelines import TrackTimelines
from streamer.objects.local import LocalObjectStore
from tests.logship.builders import line, published_track, session_lines
from tests.telemetry.conftest import FlakyStore


@pytest.fixture
def flaky(tmp_path: Path) -> FlakyStore:
    return FlakyStore(tmp_path / "sessions.sqlite3")


def shipper(tmp_path: Path, store: FlakyStore, sleep=lambda _: None, **kw) -> Shipper:
    data = tmp_path / "data"
    if not (data / "objects").exists():
        published_track(data)
    positions = OffsetFile(tmp_path / "state.json")
    return Shipper(
        LogTailer(tmp_path / "access.log", positions.load()),
        positions,
        store,
        store,
        TrackTimelines(LocalObjectStore(data / "objects")),
        sleep=sleep,
        **kw,
    )


def test_a_store_outage_is_retried_with_capped_backoff_and_nothing_skipped(
    tmp_path: Path, flaky: FlakyStore
) -> None:
    (tmp_path / "access.log").write_bytes(b"".join(session_lines("s1")))
    slept: list[float] = []
    saved: list[LogPosition | None] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        saved.append(OffsetFile(tmp_path / "state.json").load())
        if sum(slept) > 120:
            flaky.down = False  # the store comes back after two minutes

    flaky.down = True
    ship = shipper(tmp_path, flaky, sleep)
    ship.run(once=True)
    assert saved and all(s is None for s in saved)  # never advanced while down
    assert max(slept) <= 30.0
    stats = ship.stats()
    assert stats.deliveries == 8 and stats.write_failures > 3 and stats.bytes_behind == 0
    assert len(flaky.inner.session_telemetry("s1").deliveries) == 8
    assert OffsetFile(tmp_path / "state.json").load() is not None


def test_stopping_during_an_outage_leaves_the_position_alone(
    tmp_path: Path, flaky: FlakyStore
) -> None:
    (tmp_path / "access.log").write_bytes(b"".join(session_lines("s1")))
    flaky.down = True
    stop = {"now": False}

    def sleep(seconds: float) -> None:
        stop["now"] = True  # SIGTERM during the backoff

    ship = shipper(tmp_path, flaky, sleep)
    ship.run(lambda: stop["now"])
    assert OffsetFile(tmp_path / "state.json").load() is None
    flaky.down = False
    again = shipper(tmp_path, flaky)
    again.run(once=True)
    assert again.stats().deliveries == 8


def test_garbage_is_counted_and_skipped_and_metrics_render(
    tmp_path: Path, flaky: FlakyStore, caplog: pytest.LogCaptureFixture
) -> None:
    good = session_lines("s1", 2)
    (tmp_path / "access.log").write_bytes(
        good[0]
        + b"not json\n"
        + b"[]\n"
        + line(session_id="has spaces")
        + line(status="401", session_id="", object="")
        + line(object="seg_99999.m4s")  # not in the record: no delivery
        + good[1]
        + b'{"ts": "1733'  # torn: not consumed
    )
    ship = shipper(tmp_path, flaky)
    ship.run(once=True)
    stats = ship.stats()
    assert stats.malformed == {"not_json": 1, "not_object": 1, "bad_field": 1}
    assert (stats.unverified, stats.untimed, stats.deliveries) == (1, 1, 2)
    assert stats.bytes_behind == len(b'{"ts": "1733')
    assert f"offset {len(good[0])} " in caplog.text  # each skipped line logged with its offset
    text = render_metrics(stats)
    assert 'logship_malformed_lines_total{reason="not_json"} 1' in text
    assert "logship_lag_bytes 12" in text


def test_a_backlog_saves_its_position_once_an_interval_and_on_catching_up(
    tmp_path: Path, flaky: FlakyStore
) -> None:
    lines = [x for s in ("s1", "s2", "s3") for x in session_lines(s)]
    (tmp_path / "access.log").write_bytes(b"".join(lines))
    now = {"t": 100.0}
    saved: list[LogPosition] = []

    def monotonic() -> float:
        now["t"] += 0.2  # each batch takes 0.2 s
        return now["t"]

    class Recording(OffsetFile):
        def save(self, position: LogPosition) -> None:
            saved.append(position)
            super().save(position)

    data = tmp_path / "data"
    published_track(data)
    ship = Shipper(
        LogTailer(tmp_path / "access.log"),
        Recording(tmp_path / "state.json"),
        flaky,
        flaky,
        TrackTimelines(LocalObjectStore(data / "objects")),
        batch_lines=2,
        monotonic=monotonic,
        position_interval_s=0.5,
        sleep=lambda _: None,
    )
    ship.run(once=True)
    # 12 batches: saved after the first, then once 0.5 s passed (every third batch here),
    # and at the end; never ahead of what was written.
    offsets = [p.offset for p in saved]
    assert offsets == sorted(offsets) and 3 < len(saved) < 8
    assert offsets[-1] == len(b"".join(lines)) == ship.stats().offset
    assert ship.stats().position_saves == len(saved)
    assert OffsetFile(tmp_path / "state.json").load() == saved[-1]
