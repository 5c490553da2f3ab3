"""Shipping several access logs at once (nginx's log shards): one shipper process per file.

    access.0.log ──shipper process──┐
    access.1.log ──shipper process──┼──▶ SessionStore
    ...                             ┘

Each process is the plain shipper of one file (`run_logship`), with its own position file
and lock, so exactly-once holds per file as it does for one log; the files share nothing but
the store. Processes, not threads: parsing is CPU-bound Python, and the point is to use more
than one core. The parent only supervises: it passes SIGTERM and SIGINT on, waits, and adds
up the final stats. A shard that fails stops the others (each saves its position) and the
parent raises ShardFailed, so the supervisor above (`streamer serve`, systemd) restarts all.
"""

from __future__ import annotations

import glob
import logging
import multiprocessing
import queue
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from types import FrameType
from typing import Any

from cdn_edge.logship.errors import ShardFailed, ShipperStateError
from cdn_edge.logship.stats import ShipStats, combine_stats

logger = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0  # a shard finishes its batch and saves its position; then SIGKILL
_GLOB_CHARACTERS = frozenset("*?[")


def expand_logs(log: Path) -> tuple[Path, ...]:
    """The files `log` names: itself, or the files a glob pattern matches now, sorted."""
    text = str(log)
    if not _GLOB_CHARACTERS & set(text):
        return (log,)
    found = tuple(sorted(Path(p) for p in glob.glob(text) if Path(p).is_file()))
    if not found:
        raise ShipperStateError(f"no access log matches {text}; nginx creates its shards at start")
    return found


def shard_metrics_file(metrics_file: Path, log: Path) -> Path:
    """The metrics file of one shard, beside the one given: logship.access.0.prom."""
    return metrics_file.with_name(f"{metrics_file.stem}.{log.stem}{metrics_file.suffix}")


@dataclass(frozen=True)
class ShardJob:
    """What one shard's process is given: the arguments of `run_logship` for one file."""

    log: Path
    kwargs: dict[str, Any]  # settings and keyword arguments, all picklable
    log_level: int


ShipOne = Callable[..., ShipStats]


def _shard_main(ship: ShipOne, job: ShardJob, results: Any) -> None:
    logging.basicConfig(
        level=job.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    stats = ship(log=job.log, **job.kwargs)
    results.put((str(job.log), stats))


class _Supervisor:
    def __init__(self, stop_timeout_s: float) -> None:
        self.stopping = False
        self.stop_timeout_s = stop_timeout_s

    def stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True


def run_shards(
    ship: ShipOne, jobs: Sequence[ShardJob], *, stop_timeout_s: float = STOP_TIMEOUT_S
) -> ShipStats:
    """Run `ship(log=..., **kwargs)` for each job in its own process until all end; SIGTERM
    and SIGINT are passed on. The stats of all, added up. Raises ShardFailed."""
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited locks
    results = context.Queue()
    processes = [
        context.Process(
            target=_shard_main, args=(ship, job, results), name=f"logship {job.log.name}"
        )
        for job in jobs
    ]
    supervisor = _Supervisor(stop_timeout_s)
    previous = {sig: signal.signal(sig, supervisor.stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    collected: dict[str, ShipStats] = {}
    failed: list[str] = []
    try:
        for process in processes:
            process.start()
        logger.info("shipping %d logs: %s", len(jobs), ", ".join(str(j.log) for j in jobs))
        _supervise(processes, results, collected, failed, supervisor)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
    if failed:
        raise ShardFailed(f"the shipper of {', '.join(failed)} failed; see its log above")
    return combine_stats(collected.values())


def _supervise(
    processes: list[Any],
    results: Any,
    collected: dict[str, ShipStats],
    failed: list[str],
    supervisor: _Supervisor,
) -> None:
    deadline: float | None = None
    while True:
        _drain(results, collected)  # before joining: a child exits once its result is read
        alive = [p for p in processes if p.is_alive()]
        for process in processes:
            if not process.is_alive() and process.exitcode not in (0, None):
                if process.name not in failed:
                    logger.error("%s exited with status %s", process.name, process.exitcode)
                    failed.append(process.name)
                supervisor.stopping = True
        if not alive:
            break
        if supervisor.stopping and deadline is None:
            deadline = time.monotonic() + supervisor.stop_timeout_s
            for process in alive:
                process.terminate()  # SIGTERM; one that ended meanwhile is passed over
        if deadline is not None and time.monotonic() > deadline:
            for process in alive:
                logger.error("%s did not stop in time; killed", process.name)
                process.kill()
        wait([p.sentinel for p in alive], timeout=0.2)
    _drain(results, collected, 1.0)


def _drain(results: Any, collected: dict[str, ShipStats], timeout_s: float = 0.0) -> None:
    """Take the results there are; at the end wait a moment for the last to be readable."""
    while True:
        try:
            log, stats = results.get(timeout=timeout_s) if timeout_s else results.get_nowait()
        except queue.Empty:
            return
        collected[log] = stats
