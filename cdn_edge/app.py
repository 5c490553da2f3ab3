"""The edge application: the one place its parts are built and wired together.

POST    /v1/sessions                                 open a session (listener token)
GET     /v1/s/{session_token}/main.m3u8                  multivariant playlist
GET     /v1/s/{session_token}/{rendition}/playlist.m3u8  media playlist
GET     /v1/s/{session_token}/keys/{key_id}              content key, 16 bytes
GET     /v1/gate/s/{session_token}/keys/{key_id}         the nginx gate's key fetch (its
                                                         credential only; handlers/gate_keys)
GET     /v1/s/{session_token}/{rendition}/{file}         init section or segment (without
                                                         nginx in front: --segments python)
GET     /v1/s/{session_token}/ads/...                    ad breaks of free sessions (handlers/ads)
POST    /v1/s/{session_token}/ads/{n}/events             ad beacons (impression, quartiles)
GET     /v1/ads/campaigns/{campaign_id}/report?day=  ad impressions and quartiles (analytics)
GET|POST /v1/ads/campaigns[/{id}[/pause|/resume]], PATCH  campaigns (handlers/ad_campaigns)
GET     /v1/steer/{session_token}                    HLS content steering manifest (JSON)
GET     /v1/tracks                                   published tracks (listener token)
POST    /v1/sessions/{session_id}/events             player events (session token)
GET     /v1/sessions/{session_id}/qoe                the session's QoE and play (session token)
GET     /v1/tracks/{track_id}/plays?from=&to=        plays per UTC day (analytics token)
GET     /?token=...&track=...&codecs=...             web player (also at /player);
                                                     /static/hls.min.js
POST    /v1/devices, GET /v1/devices, DELETE /v1/devices/{device_id}     offline downloads:
POST    /v1/devices/{device_id}/licences (GET lists)  devices, licences, offline plays
POST    /v1/devices/{device_id}/licences/{licence_id}/renew   (listener token;
DELETE  /v1/devices/{device_id}/licences/{licence_id}          cdn_edge.handlers.downloads)
POST    /v1/devices/{device_id}/plays
DELETE  /v1/admin/licences/{licence_id}              revoke a licence (admin token)
GET     /v1/downloads/licence-key                    the key licences are signed with
GET     /metrics  /healthz  /readyz
OPTIONS *                                            CORS preflight
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

from aiohttp import web

from cdn_edge.admin_auth import ADS_SCOPE, LICENCES_SCOPE, AdminVerifier
from cdn_edge.ads.creatives import CreativeCache
from cdn_edge.ads.recorder import AdRecorder
from cdn_edge.ads.service import AdDecisionService
from cdn_edge.analytics_auth import AnalyticsVerifier
from cdn_edge.audit_writer import AuditMetrics, AuditWriter
from cdn_edge.blocking import BlockingRunner
from cdn_edge.handlers import (
    ad_campaigns,
    ads,
    downloads,
    events,
    gate_keys,
    keys,
    ops,
    player_page,
    playlists,
    royalty_plays,
    segments,
    sessions,
    steering,
    tracks,
)
from cdn_edge.handlers.tracks import TRACK_LIST, TrackList
from cdn_edge.listener_auth import ListenerVerifier
from cdn_edge.loop_lag import watch_loop_lag
from cdn_edge.metrics import EdgeMetrics, shared_by_workers
from cdn_edge.playback.catalog_cache import CatalogCache
from cdn_edge.playback.gate_keys import gate_credentials
from cdn_edge.playback.key_service import KeyService, key_buckets, listener_key_buckets
from cdn_edge.playback.offline_licences import OfflineLicences, licence_signing_seed
from cdn_edge.playback.playlist_builder import PlaylistBuilder
from cdn_edge.playback.segment_cache import SegmentCache
from cdn_edge.playback.tokens import PlaybackTokens
from cdn_edge.policy.event_budget import EventBudgets
from cdn_edge.state import (
    ACCESS_LOG,
    AD_STORE,
    ADMINS,
    ADS,
    ADS_ADMIN,
    ANALYTICS,
    AUDIT,
    BLOCKING,
    CAPTURE,
    CATALOG,
    CLOCK,
    EVENT_BUDGETS,
    GATE_CREDENTIALS,
    KEYS,
    LISTENERS,
    METRICS,
    OFFLINE,
    PATHWAY_HEALTH,
    PATHWAYS,
    PLAY_LEDGER,
    PLAYLISTS,
    READER,
    READY,
    SEGMENTS,
    SESSIONS,
    SETTINGS,
    STATIC,
    TELEMETRY,
    TELEMETRY_STORE,
    THROUGHPUT,
    TOKENS,
    Readiness,
)
from cdn_edge.steering.health import HealthBoard
from cdn_edge.steering.pathways import pathways_from_settings
from cdn_edge.steering.probes import PathwayProber, probe_interval_s
from cdn_edge.steering.probes import stop as stop_probes
from cdn_edge.steering.throughput_history import RecentThroughput
from cdn_edge.telemetry.capture import TelemetryCapture, default_server_id
from cdn_edge.telemetry.play_recounts import PlayRecounter
from cdn_edge.telemetry.session_recorder import SessionRecorder
from cdn_edge.telemetry.sink import SessionStoreSink
from cdn_edge.telemetry.spooling_sink import REPLAYER, SpoolingSink, SpoolReplayer
from cdn_edge.telemetry.writer import TelemetrySink, TelemetryWriter
from cdn_edge.web.access_log import FLUSH_INTERVAL_S, AccessLog
from cdn_edge.web.middleware import edge_middleware
from cdn_edge.web.static_files import StaticFiles, default_hls_dir
from drm import KeyRing
from streamer.ads.port import AdStore
from streamer.audit.chain import derive_chain_key
from streamer.audit.memory import InMemoryAuditLog
from streamer.audit.recorder import AuditRecorder
from streamer.audit.recorders import stream_name
from streamer.objects.port import ObjectReader
from streamer.offline.port import OfflineStore
from streamer.sessions.port import SessionStore
from streamer.settings import Settings
from streamer.telemetry.spool import SPOOL_DIR, TelemetrySpool, worker_spool_dir
from streamer.token_secrets import TokenSecrets, load_token_secrets

AD_SPOOL_DIR = "ad-spool"  # under the data directory: one file per edge worker
MAX_REQUEST_BYTES = 64 * 1024  # the largest body the edge takes is a session request
GAUGE_REFRESH_S = 1.0  # with workers: how stale another worker's gauges may be at a scrape


def create_app(
    settings: Settings,
    object_reader: ObjectReader,
    session_store: SessionStore,
    keyring: KeyRing,
    *,
    clock: Callable[[], float] = time.time,
    secrets: TokenSecrets | None = None,
    hls_dir: Path | None = None,
    spool: TelemetrySpool | None = None,
    access_log: AccessLog | None = None,
    play_recounts: bool = False,
    audit: AuditRecorder | None = None,
    ad_store: AdStore | None = None,
    ad_spool: Path | None = None,
    offline_store: OfflineStore | None = None,
) -> web.Application:
    """The edge application over these backends.

    `secrets` default to those derived from the settings (read from disk once, here);
    `hls_dir` defaults to `<repo>/web/node_modules/hls.js/dist`. `spool` takes telemetry
    the session store refuses or is slow to take (`build_app` always gives one); without it,
    telemetry waits for the store in the writer's memory only. `access_log` defaults to
    stderr when the access logger is enabled for INFO (as the server configures logging).
    `play_recounts` runs the periodic play recount (one edge worker does: `build_app`).
    `audit` records key grants; by default into memory only (`build_app` gives the real log).
    `ad_store` turns ads on for free sessions (cdn_edge.ads); `ad_spool` is the file its
    records go to while the store fails.
    `offline_store` holds devices and download licences; without it the download routes are
    503 (`build_app` always gives one). The edge closes it at shutdown.
    """
    secrets = secrets if secrets is not None else load_token_secrets(settings)
    pathways = pathways_from_settings(settings)  # ConfigError here, before anything opens
    app = web.Application(middlewares=[edge_middleware], client_max_size=MAX_REQUEST_BYTES)
    blocking = BlockingRunner()
    metrics = EdgeMetrics()
    tokens = PlaybackTokens(secrets.playback_key)
    segment_cache = SegmentCache(settings.segment_cache_bytes)
    recorder = SessionRecorder(session_store, blocking, metrics, clock)
    metrics.watch_cache(segment_cache)
    metrics.watch_active_sessions(recorder.active)
    health = HealthBoard(p.id for p in pathways)
    metrics.watch_pathways(tuple(p.id for p in pathways), health.is_healthy)

    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[METRICS] = metrics
    app[READER] = object_reader
    app[BLOCKING] = blocking
    app[CATALOG] = CatalogCache(lambda key: blocking(object_reader.get, key), clock)
    app[SEGMENTS] = segment_cache
    app[KEYS] = KeyService(keyring, clock, key_buckets(clock), listener_key_buckets(clock))
    app[TOKENS] = tokens
    app[GATE_CREDENTIALS] = gate_credentials(secrets.playback_key)
    app[LISTENERS] = ListenerVerifier(secrets.platform_key, clock)
    ad_slot_s = settings.ad_slot_s if ad_store is not None else None
    app[PLAYLISTS] = PlaylistBuilder(settings.base_url, pathways, ad_slot_s=ad_slot_s)
    app[PATHWAYS] = pathways
    app[PATHWAY_HEALTH] = health
    app[THROUGHPUT] = RecentThroughput()
    app[SESSIONS] = recorder
    app[STATIC] = StaticFiles(hls_dir if hls_dir is not None else default_hls_dir(), blocking)
    app[TRACK_LIST] = TrackList(object_reader, blocking, clock)
    app[READY] = Readiness()
    app[ACCESS_LOG] = access_log if access_log is not None else AccessLog.from_logging()
    sink: TelemetrySink = SessionStoreSink(session_store, session_store, metrics.telemetry)
    app[REPLAYER] = None
    if spool is not None:  # opened (recovered, replayed) at startup
        metrics.spool.watch(spool)
        spooling = SpoolingSink(sink, spool, metrics.spool)
        sink, app[REPLAYER] = spooling, SpoolReplayer(spooling, metrics.spool)
    telemetry = TelemetryWriter(
        sink,
        settings.telemetry_queue_events,
        metrics.telemetry,
        clock,
        max_batch=session_store.telemetry_batch_items,
    )
    app[TELEMETRY] = telemetry
    app[EVENT_BUDGETS] = EventBudgets(clock)
    app[CAPTURE] = TelemetryCapture(telemetry, metrics.telemetry, clock, default_server_id())
    app[TELEMETRY_STORE] = session_store
    app[PLAY_LEDGER] = session_store
    app[ANALYTICS] = AnalyticsVerifier(secrets.platform_key, clock)
    if audit is None:
        audit = AuditRecorder(
            InMemoryAuditLog, derive_chain_key(secrets.platform_key), stream_name("edge"), None
        )
    app[AUDIT] = AuditWriter(audit, AuditMetrics(metrics.registry), clock)
    app[ADMINS] = AdminVerifier(secrets.platform_key, clock, LICENCES_SCOPE)
    app[OFFLINE] = None
    if offline_store is not None:
        seed = licence_signing_seed(secrets.playback_key)
        app[OFFLINE] = OfflineLicences(
            offline_store, keyring, tokens, seed, clock, audit=app[AUDIT].record
        )

    app[AD_STORE] = ad_store
    app[ADS_ADMIN] = AdminVerifier(secrets.platform_key, clock, ADS_SCOPE)
    app[ADS] = None
    if ad_store is not None:
        app[ADS] = AdDecisionService(
            ad_store,
            blocking,
            CreativeCache(lambda key: blocking(object_reader.get, key), clock),
            AdRecorder(ad_store, blocking, metrics.ads, ad_spool),
            metrics.ads,
            clock,
            break_every_s=settings.ad_break_every_s,
            timeout_s=settings.ad_decision_timeout_s,
        )

    _add_routes(app)
    app.cleanup_ctx.append(_lifecycle)
    app.cleanup_ctx.append(_ad_records)  # after _lifecycle: flushes before the store closes
    app.cleanup_ctx.append(_access_log_flushes)
    app.cleanup_ctx.append(_gauge_refreshes)
    app.cleanup_ctx.append(_loop_lag)
    app.cleanup_ctx.append(_pathway_probes)
    app.cleanup_ctx.append(_telemetry)  # after _lifecycle: stops before the store closes
    app.cleanup_ctx.append(_audit)
    if play_recounts and settings.play_recount_interval_s > 0:
        recounter = PlayRecounter(session_store, blocking, clock, settings.play_recount_interval_s)
        app.cleanup_ctx.append(functools.partial(_play_recounts, recounter=recounter))
    app.on_shutdown.append(_drain)
    return app


def build_app(settings: Settings, worker: int = 0) -> web.Application:
    """The edge over the backends `settings` name (the embedded defaults unless configured);
    `worker` is this process's index among the edge's workers (its telemetry spool's)."""
    from streamer.audit.recorders import open_recorder
    from streamer.backends import (
        open_ad_store,
        open_object_store,
        open_offline_store,
        open_session_store,
    )
    from streamer.keyring_file import load_or_create_keyring

    return create_app(
        settings,
        open_object_store(settings),
        open_session_store(settings),
        load_or_create_keyring(settings.kek_path),
        spool=TelemetrySpool(worker_spool_dir(settings.data_dir / SPOOL_DIR, worker)),
        play_recounts=worker == 0,
        audit=open_recorder(settings, stream_name("edge", worker)),
        ad_store=open_ad_store(settings) if settings.ads else None,
        ad_spool=settings.data_dir / AD_SPOOL_DIR / f"worker-{worker}.jsonl",
        offline_store=open_offline_store(settings),
    )


def _add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/sessions", sessions.create_session, name="session_create")
    # In this order: "keys" and "playlist.m3u8" before the segment route's wildcards.
    app.router.add_get(
        "/v1/s/{token}/main.m3u8", playlists.multivariant_playlist, name="playlist_main"
    )
    app.router.add_get("/v1/s/{token}/keys/{key_id}", keys.content_key, name="key")
    app.router.add_get("/v1/gate/s/{token}/keys/{key_id}", gate_keys.gate_key, name="gate_key")
    app.router.add_get(
        "/v1/s/{token}/{rendition}/playlist.m3u8",
        playlists.media_playlist,
        name="playlist_media",
    )
    app.router.add_get("/v1/s/{token}/{rendition}/{file}", segments.segment, name="segment")
    # Ad breaks of free sessions (cdn_edge.handlers.ads): deeper paths, no clash with the above.
    app.router.add_get("/v1/s/{token}/ads/breaks/{name}", ads.asset_list, name="ad_break")
    ad_dir = "/v1/s/{token}/ads/{n}/{campaign}/{ad_id}/{version}/{rendition}"
    app.router.add_get(f"{ad_dir}/playlist.m3u8", ads.ad_playlist, name="ad_playlist")
    app.router.add_get(f"{ad_dir}/{{file}}", ads.ad_object, name="ad_object")
    app.router.add_post("/v1/s/{token}/ads/{n}/events", ads.ad_events, name="ad_events")
    app.router.add_get(
        "/v1/ads/campaigns/{campaign_id}/report", ads.campaign_report, name="ad_report"
    )
    _add_campaign_routes(app)
    app.router.add_get("/v1/steer/{token}", steering.steering_manifest, name="steering")
    app.router.add_get("/v1/tracks", tracks.list_tracks, name="tracks")
    app.router.add_get("/", player_page.player_page, name="player")
    # The page's first address: links printed by earlier `streamer demo` runs keep working.
    app.router.add_get("/player", player_page.player_page, name="player_legacy")
    app.router.add_get("/static/hls.min.js", player_page.hls_js, name="hls_js")
    app.router.add_get("/metrics", ops.metrics, name="metrics")
    app.router.add_get("/healthz", ops.healthz, name="healthz")
    app.router.add_get("/readyz", ops.readyz, name="readyz")
    app.router.add_post(
        "/v1/sessions/{session_id}/events", events.post_events, name="session_events"
    )
    app.router.add_get(
        "/v1/sessions/{session_id}/qoe", events.session_qoe_report, name="session_qoe"
    )
    app.router.add_get("/v1/tracks/{track_id}/plays", royalty_plays.track_plays, name="track_plays")
    _add_download_routes(app)


def _add_download_routes(app: web.Application) -> None:
    """Offline downloads (cdn_edge.handlers.downloads)."""
    router = app.router
    router.add_post("/v1/devices", downloads.register_device, name="device_register")
    router.add_get("/v1/devices", downloads.list_devices, name="devices")
    router.add_delete("/v1/devices/{device_id}", downloads.remove_device, name="device_remove")
    router.add_post(
        "/v1/devices/{device_id}/licences", downloads.grant_licence, name="licence_grant"
    )
    router.add_get("/v1/devices/{device_id}/licences", downloads.list_licences, name="licences")
    router.add_post(
        "/v1/devices/{device_id}/licences/{licence_id}/renew",
        downloads.renew_licence,
        name="licence_renew",
    )
    router.add_delete(
        "/v1/devices/{device_id}/licences/{licence_id}",
        downloads.revoke_licence,
        name="licence_revoke",
    )
    router.add_post("/v1/devices/{device_id}/plays", downloads.report_plays, name="offline_plays")
    router.add_delete(
        "/v1/admin/licences/{licence_id}", downloads.admin_revoke_licence, name="licence_admin"
    )
    router.add_get("/v1/downloads/licence-key", downloads.licence_key, name="licence_key")


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    app[SESSIONS].start()
    app[READY].ready = True
    yield
    app[READY].ready = False
    await app[SESSIONS].stop()  # the queued session records, before the store closes
    await app[SEGMENTS].close()
    await app[CATALOG].close()
    blocking = app[BLOCKING]
    try:
        await blocking(app[SESSIONS].close)
        offline = app[OFFLINE]
        if offline is not None:
            await blocking(offline.store.close)
    finally:
        blocking.close()


@contextlib.asynccontextmanager
async def _running(work: Coroutine[Any, Any, None], name: str) -> AsyncIterator[None]:
    """`work` as a task for the duration of the block, cancelled at its end."""
    task = asyncio.create_task(work, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _every(interval_s: float, action: Callable[[], object]) -> None:
    while True:
        await asyncio.sleep(interval_s)
        action()


async def _access_log_flushes(app: web.Application) -> AsyncIterator[None]:
    """Writes the buffered access log every FLUSH_INTERVAL_S, and once more at shutdown."""
    access_log = app[ACCESS_LOG]
    async with _running(_every(FLUSH_INTERVAL_S, access_log.flush), "access-log-flush"):
        yield
    access_log.flush()


async def _loop_lag(app: web.Application) -> AsyncIterator[None]:
    """Samples the event loop's lag while the app runs (cdn_edge.loop_lag)."""
    async with _running(watch_loop_lag(app[METRICS].loop_lag), "loop-lag"):
        yield


async def _gauge_refreshes(app: web.Application) -> AsyncIterator[None]:
    """With workers, a scrape exports every worker's gauges from their files: this worker's
    are set from its state every GAUGE_REFRESH_S (a single process sets them at the scrape)."""
    if not shared_by_workers():
        yield
        return
    async with _running(_every(GAUGE_REFRESH_S, app[METRICS].gauges.refresh), "gauge-refresh"):
        yield


async def _pathway_probes(app: web.Application) -> AsyncIterator[None]:
    """Health checks of the CDN pathways, while the app runs (none without pathways)."""
    pathways = app[PATHWAYS]
    prober = PathwayProber(
        pathways,
        app[PATHWAY_HEALTH],
        app[CLOCK],
        interval_s=probe_interval_s(app[SETTINGS].steering_ttl_s),
    )
    task = asyncio.create_task(prober.run(), name="pathway-probes") if prober.needed else None
    yield
    if task is not None:
        await stop_probes(task)


async def _play_recounts(app: web.Application, recounter: PlayRecounter) -> AsyncIterator[None]:
    """The periodic play recount, while the app runs (after _lifecycle: stops before the store
    closes)."""
    async with _running(recounter.run(), "play-recounts"):
        yield


async def _telemetry(app: web.Application) -> AsyncIterator[None]:
    """The telemetry writer's task and the spool's replayer (which first replays what a
    previous process spooled); at shutdown, one last write of what the writer holds, to the
    store or the spool."""
    writer, replayer = app[TELEMETRY], app[REPLAYER]
    if replayer is not None:
        await replayer.open()
        replayer.start()
    writer.start()
    yield
    if replayer is not None:
        await replayer.stop()
    await writer.close()
    if replayer is not None:
        replayer.close()


async def _audit(app: web.Application) -> AsyncIterator[None]:
    """The audit writer's task; at shutdown, what it holds goes to the store or the spool."""
    app[AUDIT].start()
    yield
    await app[AUDIT].close()


async def _ad_records(app: web.Application) -> AsyncIterator[None]:
    """The ad recorder's flushes while the app runs, and a last one (or the spool) at the end."""
    service = app[ADS]
    if service is None:
        yield
        return
    async with _running(service.recorder.run(), "ad-records"):
        yield
    await service.recorder.flush()
    store = app[AD_STORE]
    if store is not None:
        store.close()


async def _drain(app: web.Application) -> None:
    # Shutdown has begun: fail readiness so load balancers stop sending new listeners.
    app[READY].ready = False


def _add_campaign_routes(app: web.Application) -> None:
    """The campaign admin API (cdn_edge.handlers.ad_campaigns)."""
    one = "/v1/ads/campaigns/{campaign_id}"
    app.router.add_get("/v1/ads/campaigns", ad_campaigns.list_campaigns, name="ad_campaigns")
    app.router.add_post("/v1/ads/campaigns", ad_campaigns.create_campaign, name="ad_campaign_new")
    app.router.add_get(one, ad_campaigns.get_campaign, name="ad_campaign")
    app.router.add_patch(one, ad_campaigns.update_campaign, name="ad_campaign_update")
    app.router.add_post(f"{one}/pause", ad_campaigns.pause_campaign, name="ad_campaign_pause")
    app.router.add_post(f"{one}/resume", ad_campaigns.resume_campaign, name="ad_campaign_resume")
