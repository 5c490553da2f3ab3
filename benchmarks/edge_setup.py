"""The edge under test: a data directory with one ingested track, and `streamer serve` on it.

The data directory is kept between runs when given (`--data-dir`): the ingest is skipped when
the track is already published. Listener tokens are minted here with the directory's own
development secret, as the account service would issue them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from benchmarks.servers import ServerProcess, free_port
from cdn_edge.listener_auth import issue_listener_token
from streamer.catalog import Tier, current_record_key, decode_track_record
from streamer.objects.local import LocalObjectStore
from streamer.sessions.port import SESSION_STORE_FILE
from streamer.settings import load_settings
from streamer.telemetry.spool import SPOOL_DIR
from streamer.token_secrets import load_token_secrets
from transcoder.sample_master import write_sample_master

DEFAULT_TRACK_ID = "bench-track"
DEFAULT_TRACK_S = 210.0  # a 3.5-minute track, like the ingest benchmark's
INGEST_TIMEOUT_S = 900.0
TOKEN_TTL_S = 6 * 3600


@dataclass(frozen=True)
class Track:
    track_id: str
    version: str
    duration_s: float
    objects_dir: Path  # <data>/objects/tracks/<id>/<version>


def _published(data_dir: Path, track_id: str) -> Track | None:
    store = LocalObjectStore(data_dir / "objects")
    try:
        record = decode_track_record(store.get(current_record_key(track_id)))
    except Exception:  # not there yet, or unreadable: ingest again
        return None
    objects = data_dir / "objects" / "tracks" / track_id / record.version
    return Track(track_id, record.version, record.duration_s, objects)


def prepare_track(
    data_dir: Path,
    track_id: str = DEFAULT_TRACK_ID,
    master: Path | None = None,
    seconds: float = DEFAULT_TRACK_S,
) -> Track:
    """The published track `track_id` in `data_dir`, ingesting a master first if needed."""
    found = _published(data_dir, track_id)
    if found is not None:
        return found
    data_dir.mkdir(parents=True, exist_ok=True)
    if master is None:
        master = data_dir / f"sample-{seconds:.0f}s.flac"
        if not master.exists():
            write_sample_master(master, seconds=seconds)
    subprocess.run(
        [sys.executable, "-m", "streamer_app.cli", "--data-dir", str(data_dir),
         "ingest", str(master), "--track-id", track_id, "--json"],
        check=True, timeout=INGEST_TIMEOUT_S, stdout=subprocess.DEVNULL, env=edge_env(data_dir),
    )  # fmt: skip
    found = _published(data_dir, track_id)
    if found is None:
        raise RuntimeError(f"ingest of {master} finished but track {track_id} is not published")
    return found


def edge_env(data_dir: Path) -> dict[str, str]:
    # The embedded defaults only: a STREAMER_* setting of the caller's shell (a Scylla session
    # store, a config file) would make the numbers incomparable.
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMER_")}
    env["STREAMER_DATA_DIR"] = str(data_dir)
    # Production edges run no ingest workers (they poll the job queue every second).
    return env


def empty_session_store(data_dir: Path) -> None:
    """Remove the embedded session store and telemetry spool a previous run filled: every run
    starts from an empty store, as the track is reused but its listeners are not. (Runs that
    kept a gigabyte of earlier CMCD rows paid for it in every insert.)"""
    for path in data_dir.glob(f"{SESSION_STORE_FILE}*"):  # the file, its -wal and -shm
        path.unlink()
    shutil.rmtree(data_dir / SPOOL_DIR, ignore_errors=True)


def start_edge(
    data_dir: Path,
    workers: int,
    log_path: Path,
    port: int | None = None,
    segments: str = "auto",
    env: Mapping[str, str] | None = None,
) -> tuple[ServerProcess, str]:
    """`streamer serve --workers N --segments ...` on a free loopback port, over an empty
    session store; the process and its base URL. With the nginx tier (`auto` where nginx is
    installed) the process tree is serve, nginx, the edge and the log shipper. `env` adds
    settings (STREAMER_*) to the embedded defaults."""
    empty_session_store(data_dir)
    port = port or free_port()
    argv = [
        sys.executable, "-m", "streamer_app.cli", "--data-dir", str(data_dir),
        "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--segments", segments,
    ]  # fmt: skip
    server_env = {**edge_env(data_dir), **(env or {})}
    server = ServerProcess(f"edge ({workers} workers)", argv, log_path, env=server_env)
    base_url = f"http://127.0.0.1:{port}"
    server.wait_ready(f"{base_url}/healthz")
    return server, base_url


def listener_tokens(data_dir: Path, count: int, tier: Tier = "premium") -> list[str]:
    """`count` listener tokens for distinct users, signed with the data directory's secret."""
    settings = load_settings(environ={}, data_dir=data_dir)
    key = load_token_secrets(settings).platform_key
    now = time.time()
    return [
        issue_listener_token(key, f"bench-{i}", tier, "SE", TOKEN_TTL_S, now) for i in range(count)
    ]


def describe_track(track: Track) -> dict[str, object]:
    return {"track_id": track.track_id, "version": track.version, "duration_s": track.duration_s}


def segment_files(track: Track, rendition: str) -> list[Path]:
    """The stored (encrypted) init and media segment files of one rendition."""
    folder = track.objects_dir / rendition
    files = sorted(
        p for p in folder.iterdir() if "~" not in p.name and p.suffix in (".mp4", ".m4s")
    )
    if not files:
        raise RuntimeError(f"no segments in {folder}: is {rendition} a rendition of the track?")
    return files


_TELEMETRY_TOTAL = re.compile(
    r"^edge_telemetry_(written|dropped)_total\{[^}]*\} (\S+)$", re.MULTILINE
)


def telemetry_totals(metrics_text: str) -> dict[str, float]:
    """Telemetry items an edge's writer wrote and dropped (all kinds), from its /metrics."""
    totals = {"written": 0.0, "dropped": 0.0}
    for which, value in _TELEMETRY_TOTAL.findall(metrics_text):
        totals[which] += float(value)
    return totals


def scrape_telemetry(base_url: str, timeout_s: float = 10.0) -> dict[str, float]:
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=timeout_s) as response:
        return telemetry_totals(response.read().decode())
