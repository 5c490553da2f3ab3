"""`streamer serve`: the edge on uvloop, one process per core sharing the port, TLS 1.3.

With `workers > 1` the parent spawns that many processes; each opens its own listening socket
with SO_REUSEPORT, and the kernel spreads connections across them (one aiohttp process is one
core; see docs/baselines.md). SIGTERM or SIGINT drains: readiness fails, open requests get up to
`SHUTDOWN_TIMEOUT_S`, then the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import wait
from pathlib import Path

import uvloop
from aiohttp import web

from cdn_edge.app import build_app
from cdn_edge.metrics import metrics_shared_by_workers, shared_by_workers
from cdn_edge.web.access_log import configure_logging
from cdn_edge.web.protocol_errors import JsonErrorAppRunner
from streamer.errors import ConfigError
from streamer.keyring_file import load_or_create_keyring
from streamer.settings import Settings
from streamer.telemetry.spool import SPOOL_DIR, adopt_orphan_spools
from streamer.token_secrets import load_token_secrets

logger = logging.getLogger(__name__)

AppHook = Callable[[web.Application, Settings], None]
"""Called with each worker's app before it serves: how the CLI mounts other applications'
routes (the ingest API) without the edge importing them. Must be a module-level function,
since workers are spawned processes."""

SHUTDOWN_TIMEOUT_S = 10.0  # in-flight requests get this long after SIGTERM
LISTEN_BACKLOG = 1024  # bursts of new connections when a CDN fails over to this edge
WORKER_JOIN_TIMEOUT_S = SHUTDOWN_TIMEOUT_S + 5.0
MAX_WORKERS = 256


def tls_context(certfile: Path, keyfile: Path) -> ssl.SSLContext:
    """A server context that speaks TLS 1.3 only."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"cannot load TLS certificate {certfile} and key {keyfile}: {exc}"
        ) from exc
    context.set_alpn_protocols(["http/1.1"])
    return context


def listening_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    """A bound, listening, non-blocking TCP socket; SO_REUSEPORT lets workers share it."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve listen address {host!r}: {exc}") from exc
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock


async def serve(
    app: web.Application,
    sock: socket.socket,
    stop: asyncio.Event,
    ssl_context: ssl.SSLContext | None = None,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Serve `app` on `sock` until `stop` is set, then shut down gracefully."""
    runner = JsonErrorAppRunner(
        app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S
    )
    await runner.setup()
    try:
        site = web.SockSite(runner, sock, ssl_context=ssl_context, backlog=LISTEN_BACKLOG)
        await site.start()
        if on_started is not None:
            on_started()
        await stop.wait()
    finally:
        await runner.cleanup()


async def _serve_until_signalled(
    app: web.Application, sock: socket.socket, ssl_context: ssl.SSLContext | None
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    host, port = sock.getsockname()[:2]
    scheme = "https" if ssl_context else "http"

    def started() -> None:
        logger.info(
            "edge listening",
            extra={"pid": os.getpid(), "url": f"{scheme}://{host}:{port}"},
        )

    await serve(app, sock, stop, ssl_context, started)
    logger.info("edge stopped", extra={"pid": os.getpid()})


# The oldest generation is collected this much less often than CPython's default (10): a full
# collection walks every tracked object, caches included, and paused loaded edge workers for
# 85-125 ms (benchmarks/README.md, paced mode). Long-lived objects here are caches without
# cycles, so little waits longer for collection.
GC_OLDEST_THRESHOLD = 100


def quiet_gc() -> None:
    """Freeze what start-up built out of the collector's way and collect the oldest generation
    rarely: for long-running event-loop processes (edge workers, load generators)."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, GC_OLDEST_THRESHOLD)


def _worker(
    settings: Settings,
    index: int,
    host: str,
    port: int,
    reuse_port: bool,
    certfile: Path | None,
    keyfile: Path | None,
    log_level: int,
    hooks: Sequence[AppHook] = (),
) -> None:
    configure_logging(log_level)
    context = tls_context(certfile, keyfile) if certfile and keyfile else None
    # Built before the loop starts: opening stores and reading secrets blocks.
    app = build_app(settings, worker=index)
    for hook in hooks:
        hook(app, settings)
    sock = listening_socket(host, port, reuse_port)
    quiet_gc()
    uvloop.run(_serve_until_signalled(app, sock, context))


def run(
    settings: Settings,
    host: str | None = None,
    port: int | None = None,
    workers: int = 1,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    log_level: int = logging.INFO,
    hooks: Sequence[AppHook] = (),
) -> int:
    """Run the edge until SIGTERM or SIGINT; the exit status for the CLI."""
    host = host or settings.host
    port = settings.port if port is None else port
    if not 1 <= workers <= MAX_WORKERS:
        raise ConfigError(f"--workers is {workers}; use 1 to {MAX_WORKERS}")
    if (certfile is None) != (keyfile is None):
        raise ConfigError("TLS needs both --certfile and --keyfile")
    configure_logging(log_level)
    if certfile and keyfile:
        tls_context(certfile, keyfile)  # fail here, once, rather than in every worker
    # Create development secrets once, before workers race to create them.
    load_token_secrets(settings)
    load_or_create_keyring(settings.kek_path)
    # Each worker replays only its own telemetry spool: give spools of workers that will not
    # run (a run with more workers before) to ones that will, before any opens its own.
    adopt_orphan_spools(settings.data_dir / SPOOL_DIR, workers)
    if workers == 1:
        # One process keeps its series in memory, unless PROMETHEUS_MULTIPROC_DIR asks for
        # files: then the last run's are cleared first, so they do not add up.
        with metrics_shared_by_workers() if shared_by_workers() else contextlib.nullcontext():
            _worker(settings, 0, host, port, False, certfile, keyfile, log_level, hooks)
        return 0
    return _supervise(settings, host, port, workers, certfile, keyfile, log_level, hooks)


def _supervise(
    settings: Settings,
    host: str,
    port: int,
    workers: int,
    certfile: Path | None,
    keyfile: Path | None,
    log_level: int,
    hooks: Sequence[AppHook],
) -> int:
    # Hold the port (bound, not listening, so it gets no connections) while workers start;
    # with port 0 this also picks the one port they all share.
    reservation = _reserve_port(host, port)
    port = reservation.getsockname()[1]
    spawn = multiprocessing.get_context("spawn")
    processes = [
        spawn.Process(
            target=_worker,
            args=(settings, i, host, port, True, certfile, keyfile, log_level, tuple(hooks)),
            name=f"edge-worker-{i}",
        )
        for i in range(workers)
    ]
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    # A scrape reaches one worker: each keeps its series where that one exports them all.
    shared_metrics = contextlib.ExitStack()
    try:
        shared_metrics.enter_context(metrics_shared_by_workers())
        for process in processes:
            process.start()
        logger.info(
            "edge supervisor started", extra={"workers": workers, "host": host, "port": port}
        )
        deadline: float | None = None
        while any(p.is_alive() for p in processes):
            wait([p.sentinel for p in processes if p.is_alive()], timeout=1.0)
            if not stopping and any(p.exitcode is not None for p in processes):
                # A worker died on its own: stop the others rather than run short-handed.
                dead = [p.pid for p in processes if p.exitcode is not None]
                logger.error("edge worker(s) %s exited; stopping the others", dead)
                stop(signal.SIGTERM, None)
            if stopping and deadline is None:
                deadline = time.monotonic() + WORKER_JOIN_TIMEOUT_S
            if deadline is not None and time.monotonic() > deadline:
                for process in processes:
                    if process.is_alive():
                        logger.warning("edge worker %s did not stop in time; killed", process.pid)
                        process.kill()
                        process.join(timeout=5.0)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        reservation.close()
        shared_metrics.close()
    # A worker stopped by SIGTERM before it installed its handler exits by the signal: clean too.
    clean = (0, -signal.SIGTERM) if stopping else (0,)
    return 0 if all(p.exitcode in clean for p in processes) else 1


def _reserve_port(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    return sock
