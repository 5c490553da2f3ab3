"""`streamer serve` as a real process that a scenario kills with SIGKILL and starts again, as a
service manager would (systemd's Restart=always), over a data dir with one published track."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from drm import KeyRing
from streamer.backends import open_object_store
from streamer.keyring_file import load_or_create_keyring
from streamer.settings import Settings, load_settings
from streamer.token_secrets import TokenSecrets, load_token_secrets
from tests.chaos.players import request
from tests.delivery_tier.test_serve_processes import descendants
from tests.e2e.conftest import REPO, STREAMER, free_port, streamer_env
from tests.edge.builders import build_track, publish

TRACK_ID = "CHAOS-TRACK-1"
SEGMENTS = 8  # 48 s: past the 30 s play threshold
READY_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 30.0  # the supervisor's drain of the surviving worker (10 s) and its exit
TOKEN_SECRET = "chaos-" + "c" * 58


@dataclass
class World:
    settings: Settings
    secrets: TokenSecrets
    ring: KeyRing


def published_world(data_dir: Path) -> World:
    """A data dir with secrets, a key ring and one track published, as `streamer` finds it."""
    settings = load_settings(environ={}, data_dir=data_dir, token_secret=TOKEN_SECRET)
    secrets = load_token_secrets(settings)
    ring = load_or_create_keyring(settings.kek_path)
    store = open_object_store(settings)
    publish(store, build_track(ring, TRACK_ID, "0c0c0c0c0c0c0c0c", segments=SEGMENTS))
    return World(settings, secrets, ring)


@dataclass
class EdgeProcess:
    """One `streamer serve` on a fixed loopback port; `start()` again after a kill."""

    args: list[str]
    env: dict[str, str]
    log: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "still running"
        self.starts += 1
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [*STREAMER, *self.args, "--port", str(self.port)],
                env=self.env,
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.wait_ready(READY_TIMEOUT_S)

    def ready(self) -> bool:
        return request(f"{self.base}/readyz")[0] == 200

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.ready():
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited with {self.process.returncode}: {self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"serve not ready within {timeout_s} s: {self.tail()}")
            time.sleep(0.05)

    def workers(self) -> list[int]:
        """The edge worker processes under serve (spawned by multiprocessing)."""
        assert self.process is not None
        tree = descendants(self.process.pid)
        return sorted(pid for pid, cmd in tree.items() if "spawn_main" in cmd)

    def kill(self, pid: int | None = None) -> float:
        """SIGKILL `pid` (serve itself by default); the monotonic time of the kill."""
        assert self.process is not None
        os.kill(self.process.pid if pid is None else pid, signal.SIGKILL)
        return time.monotonic()

    def wait_exit(self) -> int:
        assert self.process is not None
        return self.process.wait(timeout=EXIT_TIMEOUT_S)

    def stop(self) -> None:
        """SIGTERM (drain: the writer writes what it holds), SIGKILL if it lingers."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def edge_env(world: World, **settings: str) -> dict[str, str]:
    return streamer_env(world.settings.data_dir, token_secret=TOKEN_SECRET, **settings)
