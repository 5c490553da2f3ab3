"""The world the attack suite attacks: the real edge (with the ingest API mounted, as
`streamer serve --ingest` runs it) on a loopback port, the real nginx tier in front of it, two
published tracks.

Every import of product code the suite needs is here, so a module that moves is one edit.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from aiohttp import web

from cdn_edge.analytics_auth import issue_analytics_token
from cdn_edge.app import create_app
from cdn_edge.listener_auth import issue_listener_token
from cdn_edge.nginx_tier import NginxNotInstalled, NginxTier, start_nginx_tier_for_settings
from cdn_edge.playback.tokens import SESSION_TTL_S
from cdn_edge.server import serve
from drm import KeyRing, sign_token
from streamer.backends import open_job_store, open_object_store, open_session_store
from streamer.catalog import Tier
from streamer.keyring_file import load_or_create_keyring
from streamer.settings import Settings, load_settings
from streamer.token_secrets import TokenSecrets, load_token_secrets
from tests.edge.builders import BuiltTrack, build_track, publish
from tests.security.raw_http import Reply, build_request, send
from transcoder.edge_mount import mount_ingest
from transcoder.http_api import issue_ingest_token
from transcoder.worker import IngestWorker

__all__ = [
    "SESSION_TTL_S",
    "Front",
    "IngestWorker",
    "World",
    "issue_analytics_token",
    "issue_ingest_token",
    "issue_listener_token",
    "open_job_store",
    "open_object_store",
    "sign_token",
    "world",
]

UPLOAD_LIMIT_BYTES = 256 * 1024  # small, so "over the limit" is cheap to send
EDGE_READY_TIMEOUT_S = 10.0
_SESSION_TOKEN = re.compile(r"/v1/s/([^/]+)/")


class AdjustableClock:
    """The edge's clock: real time plus an offset a test may move (thread-safe enough: a float)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass(frozen=True)
class Track:
    """A published track: its id, version, record and every secret it holds."""

    built: BuiltTrack
    submitted_by: str

    @property
    def track_id(self) -> str:
        return self.built.record.track_id

    @property
    def version(self) -> str:
        return self.built.record.version

    @property
    def renditions(self) -> dict[str, str]:
        """Rendition name -> tier."""
        return {r.name: r.tier for r in self.built.record.renditions}

    @property
    def keys(self) -> dict[str, str]:
        """Key id -> tier."""
        return {k.key_id: k.tier for k in self.built.record.keys}

    def segment_names(self, rendition: str) -> list[str]:
        record = next(r for r in self.built.record.renditions if r.name == rendition)
        return [s.key.rsplit("/", 1)[1] for s in record.segments]


@dataclass(frozen=True)
class Front:
    """One way in: the edge alone (`--segments python`) or nginx in front of it."""

    name: str
    host: str
    port: int

    def request(
        self,
        method: str,
        target: str | bytes,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
    ) -> Reply:
        request = build_request(method, target, headers, body)
        return send(self.host, self.port, request, head=method == "HEAD")


@dataclass
class World:
    settings: Settings
    secrets: TokenSecrets
    ring: KeyRing
    clock: AdjustableClock
    tracks: dict[str, Track]
    edge: Front
    nginx: Front | None  # None: the edge alone
    nginx_tier: NginxTier | None
    canaries: dict[str, bytes] = field(default_factory=dict)  # files an escape would read

    @property
    def fronts(self) -> tuple[Front, ...]:
        return (self.edge,) if self.nginx is None else (self.edge, self.nginx)

    def listener_token(
        self, tier: str = "free", user: str = "listener-1", ttl_s: int = 3600, now: float = 0.0
    ) -> str:
        return issue_listener_token(
            self.secrets.platform_key, user, cast(Tier, tier), "SE", ttl_s, now or time.time()
        )

    def open_session(
        self, front: Front, track: str, tier: str, codecs: list[str] | None = None
    ) -> tuple[str, dict[str, Any]]:
        """A session opened through `front` as a listener of `tier`: (token, response)."""
        body = {"track_id": track, "device": {"codecs": codecs or ["mp4a.40.2", "opus", "fLaC"]}}
        bearer = self.listener_token(tier, user=f"{tier}-{track}", now=self.clock())
        reply = front.request(
            "POST",
            "/v1/sessions",
            [("Authorization", f"Bearer {bearer}"), ("Content-Type", "application/json")],
            json.dumps(body).encode(),
        )
        assert reply.status == 201, (front.name, reply.status, reply.body[:300])
        doc: dict[str, Any] = json.loads(reply.body)
        match = _SESSION_TOKEN.search(doc["playlist_url"])
        assert match is not None, doc["playlist_url"]
        return match.group(1), doc

    def secret_files(self) -> dict[str, bytes]:
        """Files an attacker must never read: secrets, the nginx tier's keys, the canaries."""
        files = {
            str(path.relative_to(self.settings.data_dir)): path.read_bytes()
            for path in sorted(self.settings.secrets_dir.rglob("*"))
            if path.is_file()
        }
        if self.nginx_tier is not None:
            gate = self.nginx_tier.config.gate_settings_file
            files["nginx/conf/streamer.json"] = gate.read_bytes()
        for key in self.secrets.platform_key, self.secrets.playback_key:
            files[f"token key {len(files)}"] = key
            files[f"token key hex {len(files)}"] = key.hex().encode()
        for kek in self.ring.keys:
            files[f"kek {kek.kek_id}"] = kek.secret
            files[f"kek b64 {kek.kek_id}"] = base64.b64encode(kek.secret)
        return {**files, **self.canaries}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_edge(make_app: Callable[[], web.Application]) -> Iterator[int]:
    """The edge served by `cdn_edge.server.serve` on a loopback port, in a thread of its own."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = int(sock.getsockname()[1])
    started = threading.Event()
    failed: list[BaseException] = []
    loop_box: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def main() -> None:
        stop = asyncio.Event()
        loop_box.append((asyncio.get_running_loop(), stop))
        await serve(make_app(), sock, stop, on_started=started.set)

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the test below
            failed.append(exc)
            started.set()

    thread = threading.Thread(target=run, name="attack-suite-edge", daemon=True)
    thread.start()
    if not started.wait(EDGE_READY_TIMEOUT_S) or failed:
        raise RuntimeError(f"the edge did not start: {failed!r}")
    try:
        yield port
    finally:
        loop, stop = loop_box[0]
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        sock.close()


def _track(ring: KeyRing, track_id: str, version: str, submitted_by: str) -> Track:
    built = build_track(ring, track_id, version, segments=4, segment_bytes=1500)
    record = dataclasses.replace(built.record, metadata={"submitted_by": submitted_by})
    return Track(dataclasses.replace(built, record=record), submitted_by)


@contextmanager
def world(tmp_path: Path, *, nginx: bool = True) -> Iterator[World]:
    """Two tracks published, the edge with the ingest API, nginx in front (unless not
    `nginx`); torn down after."""
    data_dir = tmp_path / "data"
    settings = load_settings(
        environ={},
        data_dir=data_dir,
        token_secret=secrets.token_hex(32),
        serve_ingest_workers=0,
        max_upload_bytes=UPLOAD_LIMIT_BYTES,
        segments="nginx",
    )
    token_secrets = load_token_secrets(settings)
    ring = load_or_create_keyring(settings.kek_path)
    store = open_object_store(settings)
    tracks = {
        "A": _track(ring, "TRKA00000001", "0a0a0a0a0a0a0a0a", "label-a"),
        "B": _track(ring, "TRKB00000002", "0b0b0b0b0b0b0b0b", "label-b"),
    }
    for track in tracks.values():
        publish(store, track.built)
    canaries = {
        "canary outside the data dir": secrets.token_bytes(64),
        "canary in the data dir": secrets.token_bytes(64),
        "canary beside the objects": secrets.token_bytes(64),
    }
    (tmp_path / "canary.bin").write_bytes(canaries["canary outside the data dir"])
    (data_dir / "canary.bin").write_bytes(canaries["canary in the data dir"])
    (data_dir / "objects" / "tracks" / "canary.bin").write_bytes(
        canaries["canary beside the objects"]
    )
    clock = AdjustableClock()
    hls_dir = tmp_path / "hls"  # no hls.js: the player page is all the static there is

    def make_app() -> web.Application:
        app = create_app(
            settings,
            store,
            open_session_store(settings),
            ring,
            clock=clock,
            secrets=token_secrets,
            hls_dir=hls_dir,
        )
        mount_ingest(app, settings)  # the ingest API, as `streamer serve --ingest` mounts it
        return app

    with live_edge(make_app) as edge_port:
        edge = Front("python edge", "127.0.0.1", edge_port)
        if not nginx:
            yield World(settings, token_secrets, ring, clock, tracks, edge, None, None, canaries)
            return
        try:
            tier = start_nginx_tier_for_settings(
                settings, f"127.0.0.1:{edge_port}", listen_port=_free_port()
            )
        except NginxNotInstalled as exc:
            message = f"the attack suite needs nginx with its Lua module (./dev setup): {exc}"
            raise AssertionError(message) from exc
        with tier:
            front = Front("nginx tier", "127.0.0.1", tier.config.listen_port)
            yield World(settings, token_secrets, ring, clock, tracks, edge, front, tier, canaries)
