"""Mount ingest on an edge process: the HTTP ingest API and, if configured, in-process workers.

`streamer serve` passes `mount_ingest` to the edge server as an app hook; the edge itself never
imports ingest code.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator

from aiohttp import web

from streamer.audit.recorders import open_recorder, stream_name
from streamer.backends import open_job_store, open_object_store
from streamer.keyring_file import load_or_create_keyring
from streamer.settings import Settings
from streamer.token_secrets import load_token_secrets
from transcoder.http_api import ingest_token_verifier, install_ingest_api
from transcoder.worker import IngestWorker

log = logging.getLogger(__name__)

IDLE_POLL_S = 1.0


def mount_ingest(app: web.Application, settings: Settings) -> None:
    """Add the ingest API to `app`, and `settings.serve_ingest_workers` worker threads."""
    store = open_object_store(settings)
    jobs = open_job_store(settings)
    verify = ingest_token_verifier(load_token_secrets(settings).platform_key)
    audit = open_recorder(settings, stream_name("ingest-api"))
    install_ingest_api(app, settings, store, jobs, verify, audit)

    async def close_audit(app: web.Application) -> AsyncIterator[None]:
        yield
        await asyncio.to_thread(audit.close)

    app.cleanup_ctx.append(close_audit)
    if settings.serve_ingest_workers <= 0:
        return
    ring = load_or_create_keyring(settings.kek_path)

    async def workers(app: web.Application) -> AsyncIterator[None]:
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=IngestWorker(settings, store, jobs, ring).run_until,
                args=(stop.is_set, IDLE_POLL_S),
                name=f"ingest-worker-{index}",
                daemon=True,
            )
            for index in range(settings.serve_ingest_workers)
        ]
        for thread in threads:
            thread.start()
        log.info("started %d in-process ingest workers", len(threads))
        yield
        stop.set()
        # A job in progress finishes its current step; an unfinished one is retried elsewhere
        # once its lease lapses, so waiting briefly is enough.
        await asyncio.gather(*(asyncio.to_thread(t.join, 5.0) for t in threads))

    app.cleanup_ctx.append(workers)
