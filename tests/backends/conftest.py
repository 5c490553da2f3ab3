"""Fixtures for the real backends: a private S3 server that a test may stop and start."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamer.settings import Settings, load_settings
from tests.backends.services import missing, services_env

HOST = "127.0.0.1"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


class PrivateS3Server:
    """A versitygw of this test's own, on a free port, over a directory that outlives restarts."""

    def __init__(self, binary: Path, root: Path) -> None:
        self.binary = binary
        self.data = root / "data"
        self.log = root / "versitygw.log"
        self.port = _free_port()
        self.access_key = "PRIVATE" + uuid.uuid4().hex[:12].upper()
        self.secret_key = uuid.uuid4().hex
        self._process: subprocess.Popen[bytes] | None = None
        self.data.mkdir(parents=True, exist_ok=True)

    def settings(self, tmp_path: Path, bucket: str = "faults") -> Settings:
        return load_settings(
            environ={},
            data_dir=tmp_path / "data",
            s3_endpoint=f"{HOST}:{self.port}",
            s3_access_key=self.access_key,
            s3_secret_key=self.secret_key,
            s3_bucket=bucket,
        )

    def start(self) -> None:
        assert self._process is None, "already running"
        env = {
            **os.environ,
            "ROOT_ACCESS_KEY": self.access_key,
            "ROOT_SECRET_KEY": self.secret_key,
        }
        with self.log.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    str(self.binary),
                    "--port",
                    f"{HOST}:{self.port}",
                    "--keep-alive",
                    "--quiet",
                    "posix",
                    str(self.data),
                ],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with socket.create_connection((HOST, self.port), timeout=1.0):
                    return
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"versitygw did not listen on {HOST}:{self.port}: {self.log.read_text()}"
                    ) from None
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL by PID, as when the server crashes; `start()` brings it back on its data."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        """SIGTERM by PID, SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_S)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def private_s3(tmp_path: Path) -> Iterator[PrivateS3Server]:
    binary = services_env().get("SERVICES_VERSITYGW", "")
    if not binary or not Path(binary).is_file():
        missing("s3", f"the versitygw binary is not built ({binary or 'SERVICES_VERSITYGW unset'})")
    server = PrivateS3Server(Path(binary), tmp_path / "private-s3")
    server.start()
    try:
        yield server
    finally:
        server.stop()
