"""`streamer logship`: the shipper as a process, wired to the configured stores."""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from types import FrameType

from cdn_edge.logship.errors import ShipperStateError
from cdn_edge.logship.offsets import OffsetFile
from cdn_edge.logship.shards import ShardJob, expand_logs, run_shards, shard_metrics_file
from cdn_edge.logship.shipper import Shipper
from cdn_edge.logship.stats import ShipStats, render_metrics
from cdn_edge.logship.tailer import ROTATE_WAIT_S, LogTailer
from cdn_edge.logship.timelines import TrackTimelines
from streamer.backends import open_object_store, open_session_store
from streamer.settings import Settings

logger = logging.getLogger(__name__)

STATE_DIR = "logship"  # under settings.data_dir: one position file per shipped log
REPORT_INTERVAL_S = 10.0  # the metrics file is rewritten, and lag logged, this often


def default_state_path(settings: Settings, log: Path) -> Path:
    """Where the position of `log` is kept unless told: named after the log's file name."""
    return settings.data_dir / STATE_DIR / f"{log.name}.position.json"


class _Reporter:
    """Between batches: writes the metrics file when due, and says whether to stop."""

    def __init__(
        self,
        shipper: Shipper,
        metrics_file: Path | None,
        labels: dict[str, str] | None = None,
        parent_pid: int | None = None,
    ) -> None:
        self.stopping = False
        self._shipper = shipper
        self._metrics_file = metrics_file
        self._labels = labels
        self._parent_pid = parent_pid
        self._next = 0.0

    def __call__(self) -> bool:
        if self._parent_pid is not None and os.getppid() != self._parent_pid:
            # A shard whose supervisor was killed stops too, rather than hold its lock
            # against the shards of the restarted one.
            self.stopping = True
        now = time.monotonic()
        if now >= self._next:
            self._next = now + REPORT_INTERVAL_S
            self.report()
        return self.stopping

    def report(self) -> ShipStats:
        stats = self._shipper.stats()
        logger.info(
            "logship %s: %d lines, %d deliveries, %d CMCD samples, %d plays; "
            "behind %d bytes, %.1f s",
            self._shipper.log_name,
            stats.lines,
            stats.deliveries,
            stats.cmcd_samples,
            stats.plays_counted,
            stats.bytes_behind,
            stats.seconds_behind,
        )
        if self._metrics_file is not None:
            tmp = self._metrics_file.with_name(self._metrics_file.name + ".tmp")
            tmp.write_text(render_metrics(stats, self._labels))
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
    """Ship `log` until SIGTERM or SIGINT (or, `once`, until its end); the final stats.

    A glob pattern (`logs/access.*.log`, nginx's log shards) ships every file it matches at
    the start, each in its own process with its own position (cdn_edge.logship.shards); the
    stats are then those of all added up, and each shard writes its own metrics file.
    """
    logs = expand_logs(log)
    if logs == (log,):
        return ship_log(
            settings,
            log,
            state,
            once=once,
            batch_lines=batch_lines,
            metrics_file=metrics_file,
            rotate_wait_s=rotate_wait_s,
        )
    if state is not None:
        raise ShipperStateError(
            f"{log} names several logs; each keeps its position in "
            f"{default_state_path(settings, Path('<log name>'))}, so give no --state"
        )
    jobs = [
        ShardJob(
            shard,
            {
                "settings": settings,
                "once": once,
                "batch_lines": batch_lines,
                "rotate_wait_s": rotate_wait_s,
                "metrics_file": None
                if metrics_file is None
                else shard_metrics_file(metrics_file, shard),
                "metrics_labels": {"log": shard.name},
                "parent_pid": os.getpid(),
            },
            logging.getLogger().getEffectiveLevel(),
        )
        for shard in logs
    ]
    return run_shards(ship_log, jobs)


def ship_log(
    settings: Settings,
    log: Path,
    state: Path | None = None,
    *,
    once: bool = False,
    batch_lines: int | None = None,
    metrics_file: Path | None = None,
    metrics_labels: dict[str, str] | None = None,
    rotate_wait_s: float = ROTATE_WAIT_S,
    parent_pid: int | None = None,
) -> ShipStats:
    """Ship one log file in this process (see run_logship); as a shard, stop when the
    process `parent_pid` is gone."""
    positions = OffsetFile(state or default_state_path(settings, log))
    positions.lock()
    store = open_session_store(settings)
    tailer = LogTailer(log, positions.load(), rotate_wait_s=rotate_wait_s)
    shipper = Shipper(
        tailer,
        positions,
        store,
        store,
        TrackTimelines(open_object_store(settings)),
        batch_lines=batch_lines,
    )
    reporter = _Reporter(shipper, metrics_file, metrics_labels, parent_pid)
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
