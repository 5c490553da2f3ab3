"""`streamer ingest`: submit masters, work through them in this process, print a summary."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from drm import KeyRing
from streamer.ads.creative import ad_record_key, decode_ad_creative
from streamer.catalog import decode_track_record, version_record_key
from streamer.jobs.port import IngestKind, Job, JobStore
from streamer.objects.port import ObjectStore
from streamer.settings import Settings
from transcoder.submit import InvalidTrackId, expand_masters, submit_master
from transcoder.worker import IngestWorker

BAR_WIDTH = 28


@dataclass
class _Row:
    name: str
    job_id: str | None
    state: str = "queued"
    reason: str = ""
    duration_s: float | None = None
    lufs: float | None = None
    gain_db: float | None = None
    seconds: float = 0.0
    speed: float | None = None
    track_id: str = ""
    version: str = ""


class _ProgressBar:
    """One line on a terminal, redrawn; nothing at all when stderr is not a terminal."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.live = out.isatty()
        self.last = 0.0

    def show(self, name: str, stage: str, percent: float, speed: float | None) -> None:
        now = time.monotonic()
        if not self.live or (now - self.last < 0.1 and percent < 100):
            return
        self.last = now
        filled = int(BAR_WIDTH * percent / 100)
        rate = f" {speed:5.1f}x realtime" if speed else ""
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        self.out.write(f"\r{name[:30]:30} [{bar}] {percent:5.1f}% {stage:<10}{rate}   ")
        self.out.flush()

    def clear(self) -> None:
        if self.live:
            self.out.write("\r" + " " * 90 + "\r")
            self.out.flush()


def ingest_files(
    paths: list[Path],
    *,
    settings: Settings,
    store: ObjectStore,
    jobs: JobStore,
    ring: KeyRing,
    track_id: str | None,
    metadata: dict[str, Any],
    as_json: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
    on_submitted: Callable[[Job], None] | None = None,
    kind: IngestKind = "track",
) -> int:
    """Ingest every master; exit status 1 when any was refused or failed. `on_submitted` is
    called with each job as it is queued (the CLI audits the submission there)."""
    out = out or sys.stdout
    err = err or sys.stderr
    masters = expand_masters(paths)
    if not masters:
        print("streamer ingest: no audio files found in the given paths", file=err)
        return 2
    if track_id and len(masters) > 1:
        print("streamer ingest: --track-id needs exactly one file", file=err)
        return 2
    rows: dict[str, _Row] = {}
    ordered: list[_Row] = []
    for path in masters:
        row = _Row(name=str(path), job_id=None)
        ordered.append(row)
        if not path.is_file():
            row.state, row.reason = "failed", f"{path} does not exist or is not a file"
            continue
        try:
            job = submit_master(
                path, store=store, jobs=jobs, track_id=track_id, metadata=metadata, kind=kind
            )
        except InvalidTrackId as exc:
            row.state, row.reason = "failed", str(exc)
            continue
        if on_submitted is not None:
            on_submitted(job)
        row.job_id = job.job_id
        rows[job.job_id] = row

    bar = _ProgressBar(err)
    started: dict[str, float] = {}

    def progress(job: Job, stage: str, percent: float, speed: float | None) -> None:
        started.setdefault(job.job_id, time.monotonic())
        row = rows.get(job.job_id)
        if row is not None:
            bar.show(Path(row.name).name, stage, percent, speed)

    worker = IngestWorker(settings, store, jobs, ring, on_progress=progress)
    pending = set(rows)

    def done() -> bool:
        for job_id in list(pending):
            job = jobs.get(job_id)
            if job.state in ("published", "failed"):
                pending.discard(job_id)
                _fill(
                    rows[job_id],
                    job,
                    store,
                    time.monotonic() - started.get(job_id, time.monotonic()),
                )
        return not pending

    worker.run_until(done, idle_s=0.2)
    bar.clear()
    if as_json:
        json.dump([row.__dict__ for row in ordered], out, indent=1)
        out.write("\n")
    else:
        _print_table(ordered, out)
    failed = [row for row in ordered if row.state != "published"]
    for row in failed:
        print(f"refused {row.name}: {row.reason}", file=err)
    return 1 if failed else 0


def _fill(row: _Row, job: Job, store: ObjectStore, seconds: float) -> None:
    row.state = job.state
    row.seconds = seconds
    row.track_id = job.spec.track_id
    if job.state == "failed":
        row.reason = f"[{job.error_code}] {job.error_message}"
        return
    row.version = job.version or ""
    if job.spec.kind == "ad":
        # An ad's samples are normalised: its LUFS is the measured result, and no gain is left.
        creative = decode_ad_creative(store.get(ad_record_key(job.spec.track_id, row.version)))
        duration_s, lufs, gain_db = creative.duration_s, creative.loudness.integrated_lufs, 0.0
    else:
        record = decode_track_record(store.get(version_record_key(job.spec.track_id, row.version)))
        duration_s = record.duration_s
        lufs, gain_db = record.loudness.integrated_lufs, record.loudness.playback_gain_db
    row.duration_s, row.lufs, row.gain_db = duration_s, lufs, gain_db
    row.speed = duration_s / seconds if seconds > 0.05 else None


def _print_table(rows: list[_Row], out: TextIO) -> None:
    header = (
        f"{'file':32} {'status':10} {'track':22} "
        f"{'duration':>8} {'LUFS':>6} {'gain':>6} {'time':>6} {'speed':>7}"
    )
    out.write(header + "\n" + "-" * len(header) + "\n")
    for row in rows:

        def num(value: float | None, fmt: str) -> str:
            return format(value, fmt) if value is not None else "-"

        out.write(
            f"{Path(row.name).name[:32]:32} {row.state:10} {row.track_id[:22]:22} "
            f"{num(row.duration_s, '7.1f')}s {num(row.lufs, '6.1f')} {num(row.gain_db, '+6.1f')} "
            f"{row.seconds:5.1f}s {num(row.speed, '6.1f')}x\n"
        )
