"""Baselines run beside the edge, driven by the same load generator at the same concurrency.

    nginx          the same stored (encrypted) segment bytes as static files: the practical
                   ceiling for segment delivery. Debian's nginx, an unprivileged foreground
                   process with a generated config in a temporary directory.
    aiohttp HMAC   `benchmarks.hmac_server`: verify one HMAC, answer a fixed 1 KB playlist:
                   the ceiling for personalised playlist (and key) issuance in Python.

Both serve the same URL paths as the edge, so one list of URLs (query strings included, which
both ignore) drives all three.
"""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.hmac_server import KEY_ENV, sign
from benchmarks.servers import ServerError, ServerProcess, free_port

NGINX_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
NGINX_INSTALL_HINT = "install it with: apt-get install -y nginx-light (or nginx)"
NGINX_WORKER_CONNECTIONS = 4096
HMAC_PAYLOAD_BYTES = 300  # about the size of an edge session token's payload


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return next((c for c in NGINX_CANDIDATES if os.access(c, os.X_OK)), None)


def nginx_config(prefix: Path, root: Path, port: int, workers: int) -> str:
    """A foreground nginx serving `root` statically on loopback, everything under `prefix`."""
    # As root, nginx would switch its workers to the compiled-in user: make it explicit,
    # and the served tree readable to it (see stage_segments).
    user = ""
    if os.geteuid() == 0:
        nobody = pwd.getpwuid(65534)
        user = f"user {nobody.pw_name} {grp.getgrgid(nobody.pw_gid).gr_name};\n"
    temp = "\n".join(
        f"    {name}_temp_path {prefix / ('tmp-' + name)};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""{user}daemon off;
master_process on;
worker_processes {workers};
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{
    worker_connections {NGINX_WORKER_CONNECTIONS};
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    open_file_cache max=1000 inactive=60s;
    types {{
        video/mp4 m4s mp4;
        application/vnd.apple.mpegurl m3u8;
    }}
    default_type application/octet-stream;
{temp}
    server {{
        listen 127.0.0.1:{port} reuseport backlog=1024;
        root {root};
        location / {{ }}
    }}
}}
"""


def stage_segments(files: list[Path], url_dir: str, root: Path) -> None:
    """Copy `files` under `root` so that `url_dir/<name>` serves each one."""
    target = root / url_dir.strip("/")
    target.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.copyfile(path, target / path.name)
    # Readable by an nginx worker running as nobody (see nginx_config).
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir())]:
        folder.chmod(0o755)
    for path in root.rglob("*"):
        if path.is_file():
            path.chmod(0o644)


@dataclass
class Baseline:
    name: str
    server: ServerProcess
    base_url: str


def start_nginx(files: list[Path], url_dir: str, work: Path, workers: int) -> Baseline:
    """nginx with `workers` worker processes serving `files` at `url_dir/<name>`."""
    binary = find_nginx()
    if binary is None:
        raise ServerError(f"nginx is not installed; {NGINX_INSTALL_HINT}")
    prefix = work / f"nginx-{workers}w"
    root = prefix / "www"
    stage_segments(files, url_dir, root)
    prefix.chmod(0o755)
    work.chmod(0o755)
    port = free_port()
    config = prefix / "nginx.conf"
    config.write_text(nginx_config(prefix, root, port, workers))
    argv = [binary, "-p", str(prefix), "-c", str(config), "-e", str(prefix / "error.log")]
    server = ServerProcess(f"nginx ({workers} workers)", argv, prefix / "stdout.log")
    base_url = f"http://127.0.0.1:{port}"
    server.wait_ready(f"{base_url}/")
    return Baseline(f"nginx-{workers}w", server, base_url)


@dataclass
class HmacBaseline(Baseline):
    key: bytes

    def playlist_url(self, index: int) -> str:
        """A distinct valid token per index, in the edge's playlist URL shape."""
        payload = f'{{"i":{index},"pad":"{"x" * HMAC_PAYLOAD_BYTES}"}}'.encode()
        return f"{self.base_url}/v1/play/{sign(payload, self.key)}/aac_160.m3u8"


def start_hmac(work: Path, processes: int = 1) -> HmacBaseline:
    key = secrets.token_bytes(32)
    port = free_port()
    env = dict(os.environ)
    env[KEY_ENV] = key.hex()
    argv = [
        sys.executable, "-m", "benchmarks.hmac_server",
        "--port", str(port), "--processes", str(processes),
    ]  # fmt: skip
    server = ServerProcess(
        f"aiohttp HMAC baseline ({processes} process)", argv, work / "hmac.log", env=env
    )
    base_url = f"http://127.0.0.1:{port}"
    server.wait_ready(f"{base_url}/v1/play/x.y/probe.m3u8")
    return HmacBaseline(f"aiohttp-hmac-{processes}p", server, base_url, key)
