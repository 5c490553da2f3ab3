"""The shipper's loop: read a batch of lines, write its telemetry, then save the position.

    access.log ──LogTailer──▶ lines ──parse_line, line_telemetry──▶ items ──▶ TelemetryStore
                                                       plays they complete ──▶ PlayLedger
                                                                       │ written
                                                          OffsetFile ◀─┘ position saved

Exactly once. The position is saved only after the batch's store writes returned (its items,
then the plays they complete), so a crash before ships the batch again on restart. Replaying
is harmless: every item's identity comes from the line (CMCD by $request_id, deliveries by
session, object and time) and the stores keep the first copy; a session's play is claimed
again and the ledger, which keeps one play per session, counts it no second time.

Because replaying is harmless, the position need not follow every batch: while a backlog is
shipped it is saved (two fsyncs) at most every `position_interval_s`, and at once when the
log is caught up, when the tailer moves to another file, and when the loop ends. A crash then
ships up to that interval's batches again, and duplicates nothing. The saved position never
runs ahead of the store: only positions after written batches are ever saved.

A store or object-store outage stops the loop on its batch: it is retried with capped
exponential backoff and the position does not move, so no line is skipped for a failure
that may pass. Only lines that can never be stored (malformed) are skipped, each counted
and logged with its offset.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from cdn_edge.logship.delivery_plays import DeliveryPlays
from cdn_edge.logship.errors import MalformedLine, ShipperStopped
from cdn_edge.logship.line_telemetry import (
    is_key_delivery,
    is_verified,
    line_telemetry,
    wants_timing,
)
from cdn_edge.logship.log_line import parse_line
from cdn_edge.logship.offsets import LogPosition, PositionStore
from cdn_edge.logship.stats import ShipStats
from cdn_edge.logship.tailer import LogRead, LogTailer
from cdn_edge.logship.timelines import TrackTimelines
from streamer.errors import StreamerError
from streamer.sessions.port import PlayLedger, TelemetryStore
from streamer.telemetry.model import CmcdSample, SegmentDelivery, TelemetryBatch

logger = logging.getLogger(__name__)

# A batch is at most this many lines or bytes. Lines are ~600 bytes and give up to two
# items. Past ~2,000 lines a batch the SQLite commit and the play checks are amortised
# (benchmarks/README.md, "Access-log shipper"); the store's own batch size is used if larger.
DEFAULT_BATCH_LINES = 2000
MAX_BATCH_BYTES = 4 * 1024 * 1024
# While a backlog ships, the position is saved this often: a crash ships at most this much
# again (harmless, see above) and a busy shipper fsyncs twice a second at most, not per batch.
POSITION_INTERVAL_S = 0.5
POLL_INTERVAL_S = 0.2  # an idle log is looked at this often (inotify is not needed at this rate)
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 30.0
STOP_CHECK_S = 0.5  # a backoff looks at the stop request this often
MALFORMED_LOGGED_PER_BATCH = 10  # the rest of a garbage batch is counted, with one summary


@dataclass
class _Converted:
    """One batch's items and what was left out, counted only once the batch is written."""

    cmcd: list[CmcdSample] = field(default_factory=list)
    deliveries: list[SegmentDelivery] = field(default_factory=list)
    rejected: list[tuple[int, MalformedLine]] = field(default_factory=list)  # (offset, why)
    unverified: int = 0
    untimed: int = 0
    keys_issued: int = 0
    cmcd_problems: int = 0
    newest_ts: float = 0.0


class Shipper:
    """Ships one access log into a telemetry store and the plays it shows into a play ledger."""

    def __init__(
        self,
        tailer: LogTailer,
        positions: PositionStore,
        store: TelemetryStore,
        ledger: PlayLedger,
        timelines: TrackTimelines,
        *,
        batch_lines: int | None = None,
        batch_bytes: int = MAX_BATCH_BYTES,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        poll_interval_s: float = POLL_INTERVAL_S,
        position_interval_s: float = POSITION_INTERVAL_S,
    ) -> None:
        self._tailer = tailer
        self._positions = positions
        self._store = store
        self._ledger = ledger
        self._timelines = timelines
        self._plays = DeliveryPlays(store)
        self._batch_lines = batch_lines or max(DEFAULT_BATCH_LINES, store.telemetry_batch_items)
        self._batch_bytes = batch_bytes
        self._clock = clock
        self._sleep = sleep
        self._poll_interval_s = poll_interval_s
        self._monotonic = monotonic
        self._position_interval_s = position_interval_s
        self._unsaved: LogPosition | None = None  # after written batches; not saved yet
        self._save_due = 0.0
        self._failures = 0
        self._counts: Counter[str] = Counter()
        self._malformed: Counter[str] = Counter()
        self._newest_ts = 0.0
        self._stop: Callable[[], bool] = lambda: False

    # One batch

    def ship_batch(self) -> LogRead:
        """Read one batch and ship it; returns when it is written (and the position saved when
        due: see the module docstring)."""
        read = self._tailer.read(self._batch_lines, self._batch_bytes)
        for skipped in read.skipped:
            self._malformed[skipped.reason] += 1
            logger.warning(
                "skipped %d bytes at offset %d of %s (inode %d): %s",
                skipped.length,
                skipped.offset,
                self._tailer.path,
                read.position.inode if read.position else 0,
                skipped.reason,
            )
        if read.lines:
            converted = self._write(read)
            self._account(read, converted)
        moved = bool(read.lines or read.skipped or read.switched)
        if read.position is not None and moved:
            self._unsaved = read.position
        # Caught up (an empty read), or another file: save now. A rotated file may be gone
        # by the next start, so its last position must not be left for a later save.
        if not moved or read.switched or self._monotonic() >= self._save_due:
            self.save_position()
        return read

    def save_position(self) -> None:
        """Save the position after the batches written so far, if it moved."""
        if self._unsaved is not None:
            self._positions.save(self._unsaved)
            self._unsaved = None
            self._counts["position_saves"] += 1
        self._save_due = self._monotonic() + self._position_interval_s

    def _write(self, read: LogRead) -> _Converted:
        """Convert and write the batch, retrying failures that may pass, until it is written."""
        while True:
            try:
                converted = self._convert(read)
                claims = self._plays.claims(converted.deliveries)
                batch = TelemetryBatch(
                    cmcd=tuple(converted.cmcd), deliveries=tuple(converted.deliveries)
                )
                if len(batch):
                    self._store.write_telemetry(batch)
                counted = self._ledger.claim_plays(claims) if claims else ()
                self._plays.written(claims)
                self._counts["plays_counted"] += len(counted)
                self._failures = 0
                return converted
            except Exception as exc:  # never skip lines: retry whatever failed
                if self._stop():
                    raise ShipperStopped(
                        f"stopped with {len(read.lines)} lines unshipped; they ship on restart"
                    ) from exc
                self._back_off(exc, len(read.lines))

    def _convert(self, read: LogRead) -> _Converted:
        out = _Converted()
        offset = read.first_offset
        for raw in read.lines:
            at, offset = offset, offset + len(raw) + 1
            try:
                line = parse_line(raw)
                if not is_verified(line):
                    out.unverified += 1
                    continue
                timing = None
                if wants_timing(line):
                    # Raises StorageError while the object store is down: the batch waits.
                    timing = self._timelines.timing(line.track_id, line.version, line.object_key)
                    if timing is None:
                        out.untimed += 1
                items = line_telemetry(line, timing)
            except MalformedLine as exc:
                out.rejected.append((at, exc))
                continue
            out.newest_ts = max(out.newest_ts, line.ts)
            out.keys_issued += is_key_delivery(line)
            out.cmcd_problems += len(items.cmcd_problems)
            if items.cmcd is not None:
                out.cmcd.append(items.cmcd)
            if items.delivery is not None:
                out.deliveries.append(items.delivery)
        return out

    def _account(self, read: LogRead, converted: _Converted) -> None:
        counts = self._counts
        counts["lines"] += len(read.lines)
        counts["batches"] += 1
        counts["deliveries"] += len(converted.deliveries)
        counts["cmcd_samples"] += len(converted.cmcd)
        counts["unverified"] += converted.unverified
        counts["untimed"] += converted.untimed
        counts["keys_issued"] += converted.keys_issued
        counts["cmcd_malformed"] += converted.cmcd_problems
        self._newest_ts = max(self._newest_ts, converted.newest_ts)
        inode = read.position.inode if read.position else 0
        for index, (offset, exc) in enumerate(converted.rejected):
            self._malformed[exc.reason] += 1
            if index < MALFORMED_LOGGED_PER_BATCH:
                logger.warning(
                    "skipped the line at offset %d of %s (inode %d): [%s] %s",
                    offset,
                    self._tailer.path,
                    inode,
                    exc.reason,
                    exc,
                )
        if len(converted.rejected) > MALFORMED_LOGGED_PER_BATCH:
            logger.warning(
                "skipped %d more malformed lines of %s in this batch",
                len(converted.rejected) - MALFORMED_LOGGED_PER_BATCH,
                self._tailer.path,
            )

    def _back_off(self, exc: Exception, lines: int) -> None:
        self._failures += 1
        self._counts["write_failures"] += 1
        delay = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2 ** (self._failures - 1))
        expected = isinstance(exc, StreamerError)
        logger.warning(
            "shipping %d lines failed (attempt %d): %s; retrying in %.1f s",
            lines,
            self._failures,
            exc if expected else repr(exc),
            delay,
            exc_info=None if expected else exc,
        )
        while delay > 0 and not self._stop():  # in slices, so that SIGTERM is not kept waiting
            self._sleep(min(delay, STOP_CHECK_S))
            delay -= STOP_CHECK_S

    # The loop

    def run(self, stop: Callable[[], bool] = lambda: False, *, once: bool = False) -> None:
        """Ship until `stop()` (checked between batches and between retries); `once`: until
        nothing is left."""
        self._stop = stop
        try:
            while not stop():
                try:
                    read = self.ship_batch()
                except ShipperStopped as exc:
                    logger.warning("%s", exc)
                    return
                if read.lines or read.skipped or read.switched:
                    continue
                if once and not self._tailer.rotation_pending:
                    return  # (a rotated file is finished, and the new one shipped, before that)
                self._sleep(self._poll_interval_s)
        finally:
            self.save_position()  # only ever a position after written batches

    @property
    def log_name(self) -> str:
        return self._tailer.path.name

    def stats(self) -> ShipStats:
        """The counts so far and the lag now."""
        position = self._tailer.position
        behind = self._tailer.bytes_behind()
        counts = self._counts
        return ShipStats(
            lines=counts["lines"],
            deliveries=counts["deliveries"],
            cmcd_samples=counts["cmcd_samples"],
            keys_issued=counts["keys_issued"],
            plays_counted=counts["plays_counted"],
            unverified=counts["unverified"],
            untimed=counts["untimed"],
            malformed=dict(self._malformed),
            cmcd_malformed=counts["cmcd_malformed"],
            batches=counts["batches"],
            write_failures=counts["write_failures"],
            position_saves=counts["position_saves"],
            bytes_behind=behind,
            seconds_behind=max(0.0, self._clock() - self._newest_ts)
            if behind and self._newest_ts
            else 0.0,
            newest_ts=self._newest_ts,
            inode=position.inode if position else 0,
            offset=position.offset if position else 0,
        )

    def close(self) -> None:
        self._tailer.close()
