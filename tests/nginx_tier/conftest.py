"""A real nginx tier on 127.0.0.1: a random free port, a tmp prefix, a fake published layout.

Never skipped: without nginx these fail and say that `./dev setup` installs it.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cdn_edge.nginx_tier import NginxNotInstalled, NginxTier, NginxTierConfig, start_nginx_tier
from tests.nginx_tier.vectors import object_bytes, vector_secrets, vectors


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    tier: NginxTier, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> Reply:
    """One request with `path` sent exactly as given (no normalising, no re-encoding)."""
    conn = http.client.HTTPConnection(tier.config.listen_host, tier.config.listen_port, timeout=5)
    try:
        given = {name.lower() for name in headers or {}}
        conn.putrequest(method, path, skip_host="host" in given, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        return Reply(response.status, response.headers, response.read())
    finally:
        conn.close()


class _EchoEdge(BaseHTTPRequestHandler):
    """A stand-in Python edge: answers with what it was asked, as JSON."""

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "headers": dict(self.headers.items())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def echo_edge() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoEdge)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def objects_root(tmp_path: Path) -> Path:
    root = tmp_path / "objects"
    for key, size in vectors()["objects"].items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(object_bytes(key, size))
    return root


@pytest.fixture
def tier_config(tmp_path: Path, objects_root: Path, echo_edge: str) -> NginxTierConfig:
    return NginxTierConfig(
        prefix=tmp_path / "nginx",
        edge_upstream=echo_edge,
        objects_root=objects_root,
        listen_port=free_port(),
        worker_processes=2,
        server_id="nginx-test",
    )


@pytest.fixture
def tier(tier_config: NginxTierConfig) -> Iterator[NginxTier]:
    try:
        started = start_nginx_tier(tier_config, vector_secrets())
    except NginxNotInstalled as exc:
        pytest.fail(f"the nginx tier tests need nginx with its Lua module: {exc}")
    with started:
        yield started


def access_lines(tier: NginxTier, expect: int) -> list[dict[str, Any]]:
    """The access log's lines, once there are `expect` (SIGUSR1 makes workers flush)."""
    tier.reopen_logs()
    path = tier.config.access_log
    lines: list[str] = []
    for _ in range(250):
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= expect:
            break
        threading.Event().wait(0.02)
    return [json.loads(line) for line in lines]
