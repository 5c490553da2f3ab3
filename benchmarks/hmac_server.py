"""Baseline: the least a Python server can do to issue a personalised playlist.

    python -m benchmarks.hmac_server --port 18080 [--processes 1]   (key in $BENCH_HMAC_KEY_HEX)

GET /v1/play/{token}/{name}.m3u8 checks the token's HMAC-SHA256 (the edge's token format,
``base64url(payload) "." base64url(mac)``) and answers a fixed 1 KB playlist; anything else is
401 or 404. aiohttp on uvloop, access log off, one process per `--processes` sharing the port
with SO_REUSEPORT: the ceiling our edge's playlist and key issuance are measured against.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Sequence

import uvloop
from aiohttp import web

KEY_ENV = "BENCH_HMAC_KEY_HEX"
PLAYLIST_BYTES = 1024
PLAYLIST_CONTENT_TYPE = "application/vnd.apple.mpegurl"
LISTEN_BACKLOG = 1024


def fixed_playlist(size: int = PLAYLIST_BYTES) -> bytes:
    """A media playlist of exactly `size` bytes (padded with a comment line)."""
    head = (
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:6\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        '#EXT-X-MAP:URI="init.mp4"\n'
    )
    body = "".join(f"#EXTINF:6.0,\nseg_{i:05d}.m4s\n" for i in range(20))
    text = head + body + "#EXT-X-ENDLIST\n"
    if len(text) + 2 > size:
        text = text[: size - 2]
    return (text + "#" + "x" * (size - len(text) - 2) + "\n").encode()


def sign(payload: bytes, key: bytes) -> str:
    """A token the server accepts: ``base64url(payload) "." base64url(HMAC-SHA256)``."""
    encoded = base64.urlsafe_b64encode(payload).rstrip(b"=")
    mac = base64.urlsafe_b64encode(hmac.digest(key, encoded, "sha256")).rstrip(b"=")
    return (encoded + b"." + mac).decode("ascii")


def make_app(key: bytes) -> web.Application:
    body = fixed_playlist()

    async def playlist(request: web.Request) -> web.Response:
        payload, _, mac = request.match_info["token"].encode("ascii", "replace").partition(b".")
        expected = base64.urlsafe_b64encode(hmac.digest(key, payload, "sha256")).rstrip(b"=")
        if not hmac.compare_digest(mac, expected):
            raise web.HTTPUnauthorized()
        return web.Response(body=body, content_type=PLAYLIST_CONTENT_TYPE)

    app = web.Application()
    app.router.add_get("/v1/play/{token}/{name}.m3u8", playlist)
    return app


def _listening_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock


def _serve(host: str, port: int, key: bytes) -> None:
    sock = _listening_socket(host, port)
    uvloop.install()
    web.run_app(make_app(key), sock=sock, access_log=None, print=None, backlog=LISTEN_BACKLOG)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args(argv)
    key_hex = os.environ.get(KEY_ENV, "")
    if len(key_hex) < 64:
        print(f"hmac_server: set {KEY_ENV} to at least 32 bytes of hex", file=sys.stderr)
        return 2
    key = bytes.fromhex(key_hex)
    if args.processes == 1:
        _serve(args.host, args.port, key)
        return 0
    spawn = multiprocessing.get_context("spawn")
    workers = [
        spawn.Process(target=_serve, args=(args.host, args.port, key), daemon=True)
        for _ in range(args.processes)
    ]
    for worker in workers:
        worker.start()

    def stop(_signum: int, _frame: object) -> None:
        for worker in workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for worker in workers:
        worker.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
