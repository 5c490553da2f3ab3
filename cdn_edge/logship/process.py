"""`streamer logship`: the shipper as a process, wired to the configured stores."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from types import FrameType

from cdn_edge.logship.offsets import OffsetFile
from cdn_edge.logship.shipper import Shipper
from cdn_edge.logship.stats import ShipStats, render_metrics
from cdn_edge.logship.tailer import ROTATE_WAIT_S, LogTailer
from cdn_edge.logship.timelines import TrackTimelines
from streamer.backends import open_object_store
from streamer.sessions import open_session_store
from streamer.settings import Settings

logger = logging.getLogger(__name__)

STATE_DIR = "logship"  # under settings.data_dir: one position file per shipped log
REPORT_INTERVAL_S = 10.0  # the metrics file is rewritten, and lag logged, this often


def default_state_path(settings: Settings, log: Path) -> Path:
    """Where the position of `log` is kept unless told: named after the log's file name."""
    return settings.data_dir / STATE_DIR / f"{log.name}.position.json"


class _Reporter:
    """Between batches: writes the metrics file when due, and says whether to stop."""

    def __init__(self, shipper: Shipper, metrics_file: Path | None) -> None:
        self.stopping = False
        self._shipper = shipper
        self._metrics_file = metrics_file
        self._next = 0.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + REPORT_INTERVAL_S
            self.report()
        return self.stopping

    def report(self) -> ShipStats:
        stats = self._shipper.stats()
        logger.info(
            "logship: %d lines, %d deliveries, %d CMCD samples, %d plays; behind %d bytes, %.1f s",
            stats.lines,
            stats.deliveries,
            stats.cmcd_samples,
            stats.plays_counted,
            stats.bytes_behind,
            stats.seconds_behind,
        )
        if self._metrics_file is not None:
            tmp = self._metrics_file.with_name(self._metrics_file.name + ".tmp")
            tmp.write_text(render_metrics(stats))
            os.replace(tmp, self._metrics_file)  # the collector never reads half a file
        return stats

    def stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True


def run_logship(
    settings: Settings,
    log: Path,
    state: Path | None = None,
    *,
    once: bool = False,
    batch_lines: int | None = None,
    metrics_file: Path | None = None,
    rotate_wait_s: float = ROTATE_WAIT_S,
) -> ShipStats:
    """Ship `log` until SIGTERM or SIGINT (or, `once`, until its end); the final stats."""
    positions = OffsetFile(state or default_state_path(settings, log))
    positions.lock()
    store = open_session_store(settings)
    tailer = LogTailer(log, positions.load(), rotate_wait_s=rotate_wait_s)
    shipper = Shipper(
        tailer,
        positions,
        store,
        TrackTimelines(open_object_store(settings)),
        batch_lines=batch_lines,
    )
    reporter = _Reporter(shipper, metrics_file)
    previous = {sig: signal.signal(sig, reporter.stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        shipper.run(reporter, once=once)
        return reporter.report()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shipper.close()
        store.close()
        positions.close()
