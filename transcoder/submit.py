"""Submitting masters: store the bytes, queue a job. Shared by the CLI and the HTTP API."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streamer.errors import ObjectNotFound
from streamer.jobs.port import IngestKind, IngestSpec, Job, JobStore
from streamer.objects.port import ObjectStore

MASTER_CONTENT_TYPE = "application/octet-stream"
AUDIO_SUFFIXES = frozenset(
    {".wav", ".wave", ".flac", ".aif", ".aiff", ".aifc", ".mp3", ".m4a", ".ogg", ".oga", ".opus"}
)
_TRACK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


class InvalidTrackId(ValueError):
    http_status = 400


def check_track_id(track_id: str) -> str:
    if not _TRACK_ID.match(track_id):
        raise InvalidTrackId(
            f"track id {track_id[:40]!r} must be 1-128 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit (an ISRC such as USRC17607839 fits)"
        )
    return track_id


def default_track_id(master_sha256: str) -> str:
    """Without an explicit id the master's content names the track, so re-ingest is a no-op."""
    return f"trk_{master_sha256[:16]}"


def master_key(master_sha256: str) -> str:
    return f"masters/{master_sha256}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def expand_masters(paths: list[Path]) -> list[Path]:
    """Files as given; directories contribute their audio files, sorted, recursively."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
        else:
            found.append(path)
    return found


def submit_master(
    path: Path,
    *,
    store: ObjectStore,
    jobs: JobStore,
    filename: str | None = None,
    track_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    master_sha256: str | None = None,
    now: datetime | None = None,
    kind: IngestKind = "track",
) -> Job:
    """Put the master in the object store (once per content) and queue its ingest job."""
    digest = master_sha256 or file_sha256(path)
    key = master_key(digest)
    try:
        present = store.stat(key).size == path.stat().st_size
    except ObjectNotFound:
        present = False
    if not present:
        store.put_file(key, path, MASTER_CONTENT_TYPE)
    spec = IngestSpec(
        master_key=key,
        master_sha256=digest,
        filename=filename or path.name,
        track_id=check_track_id(track_id) if track_id else default_track_id(digest),
        metadata=metadata or {},
        kind=kind,
    )
    return jobs.enqueue(spec, now or datetime.now(UTC))
