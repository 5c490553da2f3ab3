"""`streamer demo`: ingest a master (a generated sample unless one is given), serve it, and print
the URL of the player page. Part of the composition root, like the CLI."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from streamer.backends import open_job_store, open_object_store
from streamer.keyring_file import load_or_create_keyring
from streamer.settings import Settings

SAMPLE_SECONDS = 45.0
SAMPLE_TRACK_ID = "demo-sample"
DEMO_TOKEN_TTL_S = 24 * 3600


def run_demo(
    settings: Settings, master: Path | None, no_serve: bool = False, *, cli: Sequence[str]
) -> int:
    """Ingest `master`, print the player URLs, then serve as `streamer serve` does (`cli`:
    the `streamer` command its children run, for the nginx tier)."""
    from cdn_edge.delivery_tier import serve
    from cdn_edge.handlers.player_page import player_url
    from cdn_edge.listener_auth import issue_dev_token
    from transcoder.edge_mount import mount_ingest
    from transcoder.ingest_cli import ingest_files
    from transcoder.sample_master import write_sample_master

    track_id = None
    if master is None:
        master = settings.data_dir / "demo" / "sample-master.flac"
        if not master.exists():
            master.parent.mkdir(parents=True, exist_ok=True)
            print(f"generating a {SAMPLE_SECONDS:.0f} s sample master: {master}")
            write_sample_master(master, seconds=SAMPLE_SECONDS)
        track_id = SAMPLE_TRACK_ID
    store = open_object_store(settings)
    status = ingest_files(
        [master],
        settings=settings,
        store=store,
        jobs=open_job_store(settings),
        ring=load_or_create_keyring(settings.kek_path),
        track_id=track_id,
        metadata={"title": "Sample master" if track_id else master.stem},
    )
    if status != 0:
        return status
    published = track_id or _latest_track(settings)
    print()
    for tier in ("premium", "free"):
        token = issue_dev_token(settings, f"demo-{tier}", tier, "SE", DEMO_TOKEN_TTL_S)
        print(f"player ({tier} listener): {player_url(settings, published, token)}")
    sys.stdout.flush()
    if no_serve:
        return 0
    print(f"serving on {settings.base_url} (Ctrl-C to stop)", flush=True)
    return serve(settings, cli=cli, hooks=(mount_ingest,))


def _latest_track(settings: Settings) -> str:
    jobs = open_job_store(settings).list_jobs(limit=1)
    return jobs[0].spec.track_id
