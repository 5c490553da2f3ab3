"""`streamer serve --segments nginx`: nginx on the public port, the edge behind it, the shipper.

    listener ──▶ nginx (settings.host:port) ──/v1/s/… segments──▶ object store
                   │ everything else                  │ access.log (JSON lines)
                   ▼                                  ▼
        edge (`streamer serve --segments python`   shipper (`streamer logship`)
              on 127.0.0.1:<edge port>)              ──▶ session store

The edge and the shipper are `streamer` children started with the same --config and
--data-dir; nginx is started by cdn_edge/nginx_tier. The edge is told its public URL is
nginx's (STREAMER_PUBLIC_URL), so the absolute URLs it hands out point at the public port.

Supervision: nginx or the shipper dying is logged and restarted with backoff (nginx's
orphaned workers are killed first; the edge only listens on loopback, so it never serves the
public port alone). nginx that will not start again, or the edge exiting, stops everything.
SIGTERM or SIGINT stops in order: nginx stops accepting and drains, the edge drains, the
shipper gets a bounded time to reach the end of the log, then stops. SIGUSR1 makes nginx
reopen its logs after they were renamed (rotation).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from cdn_edge.delivery_tier.catch_up import wait_shipped
from cdn_edge.delivery_tier.children import Child, start_child
from cdn_edge.delivery_tier.errors import (
    DeliveryTierError,
    EdgeExited,
    EdgeStartFailed,
    NginxRestartsExhausted,
)
from cdn_edge.delivery_tier.restarts import Backoff, GaveUp, Restarting
from cdn_edge.logship.process import default_state_path
from cdn_edge.nginx_tier.from_settings import start_nginx_tier_for_settings, tier_config
from cdn_edge.nginx_tier.process import DEFAULT_NGINX, NginxTier
from cdn_edge.server import MAX_WORKERS, WORKER_JOIN_TIMEOUT_S
from cdn_edge.web.access_log import configure_logging
from streamer.errors import ConfigError
from streamer.settings import Settings

logger = logging.getLogger(__name__)

EDGE_HOST = "127.0.0.1"  # the edge is internal: nginx is the only public listener
EDGE_START_TIMEOUT_S = 60.0  # the edge opens its stores before it listens (Scylla: seconds)
EDGE_STOP_TIMEOUT_S = WORKER_JOIN_TIMEOUT_S + 5.0  # its drain, then its supervisor's join
# Longer than the tailer's wait after a rename (logship ROTATE_WAIT_S, 5 s), so a log rotated
# just before the stop is still finished.
SHIPPER_CATCH_UP_S = 15.0
POLL_S = 0.2
# nginx is the public port: restart fast, and give up (so a service manager sees it) when it
# will not start again, e.g. because something else took the port.
NGINX_BACKOFF = Backoff(initial_s=0.5, max_s=8.0, max_failures=5)
# The shipper is off the serving path: keep trying; its position keeps what is unshipped.
SHIPPER_BACKOFF = Backoff(initial_s=1.0, max_s=60.0)


@dataclass(frozen=True)
class TierPlan:
    """What `streamer serve` runs in nginx mode."""

    settings: Settings  # settings.host and settings.port are nginx's, the public address
    cli: tuple[str, ...]  # `streamer` with the same --config and --data-dir, for children
    workers: int = 1  # edge processes, and nginx workers
    edge_port: int = 0  # 0: a free loopback port
    nginx: str = DEFAULT_NGINX
    log_level: int = logging.INFO

    def __post_init__(self) -> None:
        if not self.cli:
            raise ConfigError("TierPlan.cli must name the streamer command")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise ConfigError(f"--workers is {self.workers}; use 1 to {MAX_WORKERS}")
        if not 0 <= self.edge_port < 65536:
            raise ConfigError(f"--edge-port is {self.edge_port}; use 1-65535, or 0 for a free one")


def free_port(host: str) -> int:
    """A port nothing listens on now at `host` (the child binds it a moment later)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host.strip("[]"), 0))
        return int(sock.getsockname()[1])


def resolve_ports(plan: TierPlan) -> TierPlan:
    """`plan` with port 0 (public or edge) replaced by a free port: nginx needs a real one,
    and the edge's public URL must carry it."""
    settings = plan.settings
    if settings.port == 0:
        settings = dataclasses.replace(settings, port=free_port(settings.host))
    edge_port = plan.edge_port or free_port(EDGE_HOST)
    if edge_port == settings.port:
        raise ConfigError(f"--edge-port {edge_port} is the public port; give another")
    return dataclasses.replace(plan, settings=settings, edge_port=edge_port)


class _Signals:
    """What the handlers asked for; the main loop acts on it."""

    def __init__(self) -> None:
        self.stop = False
        self.reopen = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._on_stop)
        self._previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, self._on_reopen)

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop = True

    def _on_reopen(self, signum: int, frame: FrameType | None) -> None:
        self.reopen = True


def _edge_args(plan: TierPlan) -> list[str]:
    return [
        *plan.cli,
        "serve",
        "--segments",
        "python",
        "--host",
        EDGE_HOST,
        "--port",
        str(plan.edge_port),
        "--workers",
        str(plan.workers),
    ]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_edge(plan: TierPlan, signals: _Signals) -> Child:
    """Start the edge on the loopback port and wait until its /healthz answers."""
    env = dict(os.environ)
    env["STREAMER_PUBLIC_URL"] = plan.settings.base_url  # playlists point at nginx
    edge = start_child("edge", _edge_args(plan), env)
    url = f"http://{EDGE_HOST}:{plan.edge_port}/healthz"
    deadline = time.monotonic() + EDGE_START_TIMEOUT_S
    while not _answers(url):
        if not edge.running():
            raise EdgeStartFailed(
                f"the edge (pid {edge.pid}) exited with {edge.process.returncode} while "
                f"starting on {EDGE_HOST}:{plan.edge_port}; its log is above"
            )
        if signals.stop:
            break
        if time.monotonic() > deadline:
            edge.stop()
            raise EdgeStartFailed(
                f"the edge did not answer {url} within {EDGE_START_TIMEOUT_S:.0f} s; its log is "
                "above"
            )
        time.sleep(POLL_S)
    return edge


def run_delivery_tier(plan: TierPlan) -> int:
    """Run nginx, the edge and the shipper until SIGTERM or SIGINT; the exit status."""
    configure_logging(plan.log_level)
    plan = resolve_ports(plan)
    settings = plan.settings
    upstream = f"{EDGE_HOST}:{plan.edge_port}"
    access_log = tier_config(settings, upstream).access_log
    state_file = default_state_path(settings, access_log)

    def start_nginx() -> NginxTier:
        return start_nginx_tier_for_settings(
            settings, upstream, worker_processes=plan.workers, nginx=plan.nginx
        )

    def start_shipper() -> Child:
        args = [*plan.cli, "logship", "--log", str(access_log), "--state", str(state_file)]
        return start_child("shipper", args, nice=settings.shipper_nice)

    nginx = Restarting("nginx", start_nginx, NGINX_BACKOFF)
    shipper = Restarting("shipper", start_shipper, SHIPPER_BACKOFF)
    signals = _Signals()
    signals.install()
    edge: Child | None = None
    failure: DeliveryTierError | None = None
    try:
        edge = start_edge(plan, signals)
        if not signals.stop:
            nginx.start(time.monotonic())
            shipper.start(time.monotonic())
            logger.info(
                "delivery tier serving on %s: nginx %r, edge %r on %s, shipper %r for %s",
                settings.base_url,
                nginx.handle,
                edge,
                upstream,
                shipper.handle,
                access_log,
            )
        failure = _supervise(plan, signals, edge, nginx, shipper)
    finally:
        _shutdown(edge, nginx, shipper, state_file, access_log)
        signals.restore()
    if failure is not None:
        raise failure
    return 0


def _supervise(
    plan: TierPlan,
    signals: _Signals,
    edge: Child,
    nginx: Restarting[NginxTier],
    shipper: Restarting[Child],
) -> DeliveryTierError | None:
    while not signals.stop:
        if not edge.running():
            return EdgeExited(
                f"the edge (pid {edge.pid}) exited with {edge.process.returncode}; its log is "
                "above. Stopped nginx and the shipper too: restart `streamer serve`"
            )
        now = time.monotonic()
        try:
            nginx.check(now)
        except GaveUp as exc:
            return NginxRestartsExhausted(
                f"{exc}; see {plan.settings.data_dir / 'nginx' / 'logs' / 'error.log'}"
            )
        shipper.check(now)
        if signals.reopen:
            signals.reopen = False
            if nginx.handle is not None:
                logger.info("reopening nginx's logs (SIGUSR1)")
                nginx.handle.reopen_logs()
        time.sleep(POLL_S)
    return None


def _shutdown(
    edge: Child | None,
    nginx: Restarting[NginxTier],
    shipper: Restarting[Child],
    state_file: Path,
    access_log: Path,
) -> None:
    if nginx.handle is not None:
        logger.info("stopping nginx: no new connections, open requests finish")
        nginx.handle.stop()
    if edge is not None:
        logger.info("stopping the edge: draining")
        edge.stop(EDGE_STOP_TIMEOUT_S)
    handle = shipper.handle
    if handle is None:
        return  # never started, or between restarts: its position keeps what is unshipped
    if handle.running():
        shipped = wait_shipped(state_file, access_log, SHIPPER_CATCH_UP_S, alive=handle.running)
        if not shipped:
            logger.warning(
                "the shipper did not reach the end of %s within %.0f s; the rest ships when it "
                "next starts",
                access_log,
                SHIPPER_CATCH_UP_S,
            )
    handle.stop()
    logger.info("delivery tier stopped")
