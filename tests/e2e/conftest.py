"""End-to-end fixtures: real `streamer` processes on loopback ports, each with its own data dir."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WEB_DIR = REPO / "web"
STREAMER = (sys.executable, "-m", "streamer_app.cli")
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0  # the server drains for up to 10 s (cdn_edge.server.SHUTDOWN_TIMEOUT_S)


def free_port() -> int:
    """A loopback port nothing listens on now (the server binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def streamer_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The environment for a `streamer` process: this data dir, no inherited STREAMER_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMER_")}
    env["STREAMER_DATA_DIR"] = str(data_dir)
    env.update({f"STREAMER_{k.upper()}": v for k, v in settings.items()})
    return env


def run_streamer(args: Sequence[str], env: dict[str, str], timeout_s: float) -> str:
    """Run a `streamer` command to completion; its stdout. Fails the test on a non-zero exit."""
    done = subprocess.run(
        [*STREAMER, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout_s
    )
    assert done.returncode == 0, f"streamer {' '.join(args)}: {done.stderr[-2000:]}"
    return done.stdout


def get_json(url: str, timeout_s: float = 5.0) -> object:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return json.load(response)


@contextmanager
def streamer_process(
    args: Sequence[str], env: dict[str, str], log: Path, base_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A long-running `streamer` command, ready (its /readyz answers) until the block ends."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*STREAMER, *args], env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_ready(process, f"{base_url}/readyz", log)
        yield process
    finally:
        stop(process)


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"streamer exited with {process.returncode}: {_tail(log)}")
        try:
            get_json(url, timeout_s=1.0)
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {READY_TIMEOUT_S} s: {_tail(log)}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a graceful drain), then SIGKILL if it does not end in time."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5.0)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]
