"""The edge on real loopback sockets: TLS 1.3 in-process, and `run` with two workers."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import ipaddress
import json
import os
import signal
import socket
import ssl
import sys
import time
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from prometheus_client.parser import text_string_to_metric_families

from cdn_edge.app import create_app
from cdn_edge.listener_auth import issue_dev_token, issue_listener_token
from cdn_edge.server import listening_socket, serve, tls_context
from drm import KeyRing, decrypt_segment
from manifests import parse_media, parse_multivariant
from streamer.keyring_file import load_or_create_keyring
from streamer.objects.local import LocalObjectStore
from streamer.objects.memory import InMemoryObjectStore
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.settings import Settings
from streamer.token_secrets import TokenSecrets
from tests.edge.builders import BuiltTrack, build_track, publish

REPO = Path(__file__).resolve().parents[2]
DEVICE = {"codecs": ["mp4a.40.2", "opus"]}


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return certfile, keyfile


async def play_once(
    http: aiohttp.ClientSession, base: str, token: str, track: BuiltTrack | None
) -> None:
    """Session, multivariant, media playlist, key and segment, checked end to end."""
    async with http.post(
        f"{base}/v1/sessions",
        json={"track_id": "trk1", "device": DEVICE},
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        assert response.status == 201, await response.text()
        doc = await response.json()
    assert doc["playlist_url"].startswith(base)
    async with http.get(doc["playlist_url"]) as response:
        assert response.headers["Content-Encoding"] == "gzip"  # aiohttp asks for it
        main = parse_multivariant(await response.text())
    media_url = doc["playlist_url"].rsplit("/", 1)[0] + "/" + main.variants[0].uri
    async with http.get(media_url) as response:
        media = parse_media(await response.text())
    first = media.segments[0]
    iv = media.segment_keys()[0][1]
    assert first.key is not None and iv is not None
    async with http.get(urljoin(media_url, first.key.uri)) as response:
        assert response.status == 200
        key = await response.read()
    segment_url = urljoin(media_url, first.uri)  # relative to the media playlist
    async with http.get(segment_url, headers={"Range": "bytes=0-"}) as response:
        assert response.status == 206
        body = await response.read()
    clear = decrypt_segment(body, key, iv)
    if track is not None:
        assert clear == track.clear["opus_160/seg_00000.m4s"]


async def test_tls13_loopback(
    settings: Settings, ring: KeyRing, edge_secrets: TokenSecrets, tmp_path: Path
) -> None:
    track = build_track(ring)
    store = InMemoryObjectStore()
    publish(store, track)
    certfile, keyfile = self_signed(tmp_path)
    sock = listening_socket("127.0.0.1", 0, reuse_port=False)
    port = sock.getsockname()[1]
    settings = dataclasses.replace(settings, public_url=f"https://127.0.0.1:{port}")
    app = create_app(
        settings,
        store,
        SQLiteSessionStore(tmp_path / "s.sqlite3"),
        ring,
        secrets=edge_secrets,
    )
    stop, started = asyncio.Event(), asyncio.Event()
    server = asyncio.create_task(
        serve(app, sock, stop, tls_context(certfile, keyfile), started.set)
    )
    await asyncio.wait_for(started.wait(), 10)
    client_tls = ssl.create_default_context(cafile=str(certfile))
    token = issue_listener_token(edge_secrets.platform_key, "u1", "free", "SE", 600, time.time())
    try:
        connector = aiohttp.TCPConnector(ssl=client_tls)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=10)
        ) as http:
            await play_once(http, settings.base_url, token, track)
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client_tls)
        assert writer.get_extra_info("ssl_object").version() == "TLSv1.3"
        writer.close()
        await writer.wait_closed()
        # A client that cannot speak TLS 1.3 is refused.
        old = ssl.create_default_context(cafile=str(certfile))
        old.maximum_version = ssl.TLSVersion.TLSv1_2
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=old)) as http:
            with pytest.raises(aiohttp.ClientConnectorError):
                await http.get(f"{settings.base_url}/healthz")
    finally:
        stop.set()
        await asyncio.wait_for(server, 15)
    assert sock.fileno() == -1  # closed by the shutdown


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scraped(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples of a Prometheus text exposition by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.slow
async def test_run_two_workers_share_the_port(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    settings = dataclasses.replace(settings, port=port)
    ring = load_or_create_keyring(settings.secrets_dir / "kek.json")
    track = build_track(ring)
    publish(LocalObjectStore(settings.data_dir / "objects"), track)
    token = issue_dev_token(settings, "dev", "premium")
    script = (
        "import sys; from pathlib import Path; from cdn_edge.server import run; "
        "from streamer.settings import load_settings; "
        f"sys.exit(run(load_settings(environ={{}}, data_dir=Path({str(settings.data_dir)!r}),"
        f" port={port}), workers=2))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, cwd=REPO, env=env, stderr=asyncio.subprocess.PIPE
    )
    logged: list[str] = []

    async def collect() -> None:
        assert process.stderr is not None
        async for line in process.stderr:
            logged.append(line.decode())

    collector = asyncio.create_task(collect())

    def events(message: str) -> list[dict[str, object]]:
        docs = [json.loads(line) for line in logged if line.startswith("{")]
        return [doc for doc in docs if doc["msg"] == message]

    try:
        deadline = time.monotonic() + 30
        while len(events("edge listening")) < 2:
            assert process.returncode is None, "".join(logged)
            assert time.monotonic() < deadline, "workers did not start:\n" + "".join(logged)
            await asyncio.sleep(0.1)
        assert len({doc["pid"] for doc in events("edge listening")}) == 2
        for _ in range(4):  # a new connection each time, spread over workers by the kernel
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                await play_once(http, settings.base_url, token, track)
        # Whichever worker a scrape reaches exports both workers' series, summed.
        await asyncio.sleep(1.5)  # the other worker's gauges are set every second
        for _ in range(6):
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
                http.get(f"{settings.base_url}/metrics") as response,
            ):
                assert response.status == 200
                exported = scraped(await response.text())
            assert exported[("edge_requests_total", (("route", "session_create"),
                                                     ("status", "201")))] == 4  # fmt: skip
            assert exported[("edge_requests_total", (("route", "key"), ("status", "200")))] == 4
            assert exported[("edge_active_sessions", ())] == 4  # livesum over the workers
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 30)
        await asyncio.wait_for(collector, 10)
    assert process.returncode == 0, "".join(logged)
    assert len(events("edge stopped")) == 2
