"""`streamer serve --segments nginx` as real processes: nginx on the public port, the edge
behind it, the shipper writing nginx's access log into the SQLite session store.

Never skipped: without nginx and its Lua module these fail, and `./dev setup` installs them.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streamer.backends import open_session_store
from streamer.settings import load_settings
from streamer.telemetry.model import SessionTelemetry
from tests.e2e.conftest import free_port, run_streamer, streamer_env, streamer_process
from tests.masters import make_master

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

TRACK_ID = "TIER-TRACK-1"
CMCD_QUERY = "bl%3D1200%2Cbr%3D160%2Cot%3Da"  # bl=1200,br=160,ot=a
SHIPPED_TIMEOUT_S = 30.0  # nginx flushes its log each second; the shipper polls 5 times a second
EXIT_TIMEOUT_S = 60.0  # nginx's drain, the edge's, the shipper's catch-up (each bounded)
RESTART_TIMEOUT_S = 20.0
# A media playlist's URI in the multivariant playlist: "{rendition}/playlist.m3u8".
_MEDIA_URI = re.compile(r"^([^/\s#]+)/playlist\.m3u8$", re.MULTILINE)
_SESSION_TOKEN = re.compile(r"/v1/s/([^/]+)/")


@dataclass(frozen=True)
class Tier:
    process: subprocess.Popen[bytes]
    base: str
    port: int
    data_dir: Path
    env: dict[str, str]
    log: Path


@pytest.fixture
def tier(tmp_path: Path) -> Iterator[Tier]:
    data_dir = tmp_path / "data"
    env = streamer_env(data_dir)
    master = make_master(tmp_path / "master.flac", seconds=8.0)
    run_streamer(["ingest", str(master), "--track-id", TRACK_ID], env, timeout_s=120)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    args = ["serve", "--segments", "nginx", "--port", str(port)]
    with streamer_process(args, env, log, base) as process:
        yield Tier(process, base, port, data_dir, env, log)


def _request(
    url: str, token: str | None = None, body: object = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode())
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, dict(response.headers.items()), response.read()


def _children(pid: int) -> dict[int, int]:
    """Every process's parent, from /proc."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def descendants(pid: int) -> dict[int, str]:
    """The process tree under `pid`: pid -> command line."""
    parents = _children(pid)
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent and child not in found:
                try:
                    found[child] = (
                        Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                    )
                except OSError:
                    continue
                frontier.append(child)
    return found


def alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet is not running)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def wait_for(what: str, check: object, timeout_s: float) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout_s} s")


def open_session(tier: Tier) -> dict[str, object]:
    token = run_streamer(["token", "--user", "tier-listener"], tier.env, timeout_s=30).strip()
    device = {"codecs": ["mp4a.40.2", "opus", "fLaC"]}
    status, _, body = _request(
        f"{tier.base}/v1/sessions", token, {"track_id": TRACK_ID, "device": device}
    )
    assert status == 201
    doc: dict[str, object] = json.loads(body)
    return doc


def niceness(pid: int) -> int:
    """A process's nice value (proc(5): field 19 of /proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[16])


def test_serve_runs_nginx_the_edge_and_the_shipper_and_stops_them_all(tier: Tier) -> None:
    session = open_session(tier)
    playlist_url = str(session["playlist_url"])
    assert playlist_url.startswith(f"{tier.base}/"), "the edge must hand out nginx's address"
    found = _SESSION_TOKEN.search(playlist_url)
    assert found, playlist_url
    token = found.group(1)

    _, _, playlist = _request(playlist_url)  # proxied by nginx to the edge
    uri = _MEDIA_URI.search(playlist.decode())
    assert uri, playlist.decode()
    rendition = uri.group(1)

    status, headers, got = _request(
        f"{tier.base}/v1/s/{token}/{rendition}/seg_00000.m4s?CMCD={CMCD_QUERY}"
    )
    assert status == 200 and headers["Server"] == "nginx"  # served by nginx, not aiohttp
    version = session["track"]["version"]  # type: ignore[index]
    stored = tier.data_dir / "objects" / "tracks" / TRACK_ID / str(version) / rendition
    assert got == (stored / "seg_00000.m4s").read_bytes()

    session_id = str(session["session_id"])
    name = f"{rendition}/seg_00000.m4s"
    store = open_session_store(load_settings(environ={}, data_dir=tier.data_dir))
    try:

        def shipped() -> SessionTelemetry | None:
            seen = store.session_telemetry(session_id)
            delivered = [d.name for d in seen.deliveries] == [name]
            sampled = any(s.object == name and s.keys.get("bl") == 1200 for s in seen.cmcd)
            return seen if delivered and sampled else None

        wait_for("the shipper wrote the delivery and its CMCD sample", shipped, SHIPPED_TIMEOUT_S)
    finally:
        store.close()

    tree = descendants(tier.process.pid)
    commands = " | ".join(tree.values())
    assert "nginx: master process" in commands and "nginx: worker process" in commands, commands
    assert "serve --segments python --host 127.0.0.1" in commands, commands
    assert " logship --log " in commands, commands
    [shipper] = [pid for pid, command in tree.items() if " logship --log " in command]
    assert niceness(shipper) == niceness(tier.process.pid) + 10  # serving keeps the CPU first
    autogroup = Path(f"/proc/{shipper}/autogroup")
    if autogroup.exists():  # sched(7): a session competes as a group, whatever its nice values
        assert autogroup.read_text().split()[-2:] == ["nice", "10"], autogroup.read_text()

    tier.process.send_signal(signal.SIGTERM)
    assert tier.process.wait(EXIT_TIMEOUT_S) == 0, tier.log.read_text()[-3000:]
    left = {pid: command for pid, command in tree.items() if alive(pid)}
    assert not left, f"left running after serve stopped: {left}"
    assert not answers(tier.port)


def test_serve_restarts_nginx_killed_with_sigkill(tier: Tier) -> None:
    pid_file = tier.data_dir / "nginx" / "nginx.pid"
    killed = int(pid_file.read_text())
    workers = [p for p, cmd in descendants(killed).items() if "worker process" in cmd]
    assert workers
    os.kill(killed, signal.SIGKILL)

    def restarted() -> int | None:
        try:
            pid = int(pid_file.read_text())
        except (OSError, ValueError):
            return None
        return pid if pid != killed and alive(pid) and answers(tier.port) else None

    wait_for("serve restarted nginx", restarted, RESTART_TIMEOUT_S)
    assert not [w for w in workers if alive(w)], "the killed master's workers were left"
    status, _, body = _request(f"{tier.base}/readyz")  # through the new nginx to the edge
    assert status == 200 and json.loads(body)["status"] == "ready"
    # The supervisor logs the restart once its start returns, which can be just after the new
    # nginx answers: wait for the line rather than race it.
    wait_for("serve logged the restart", lambda: "nginx restarted" in tier.log.read_text(), 10.0)


def test_sigusr1_to_serve_reopens_nginx_logs_after_a_rename(tier: Tier) -> None:
    logs = tier.data_dir / "nginx" / "logs"
    _request(f"{tier.base}/healthz")
    (logs / "access.log").rename(logs / "access.log.1")  # what logrotate does first
    tier.process.send_signal(signal.SIGUSR1)

    def reopened() -> bool:
        _request(f"{tier.base}/healthz")
        path = logs / "access.log"
        return path.exists() and b"/healthz" in path.read_bytes()

    wait_for("nginx wrote to a new access.log", reopened, RESTART_TIMEOUT_S)
    assert tier.process.poll() is None
