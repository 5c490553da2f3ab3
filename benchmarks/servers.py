"""Server processes under test: started as subprocesses on loopback, awaited, always stopped.

Every wait is bounded: a server that is not answering within `READY_TIMEOUT_S` is killed and
reported with the tail of its log; `stop` sends SIGTERM, waits `STOP_TIMEOUT_S`, then kills
the whole process group it started (never anything else).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0  # the edge drains for up to 10 s after SIGTERM
PROBE_INTERVAL_S = 0.1
LOG_TAIL_BYTES = 2000


class ServerError(RuntimeError):
    """A server under test did not start, or died."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def descendants(pid: int) -> list[int]:
    """`pid` and every process below it, from /proc (children files, else a ppid scan)."""
    found = [pid]
    index = 0
    while index < len(found):
        current = found[index]
        index += 1
        found.extend(_children(current))
    return found


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    task_dir = Path(f"/proc/{pid}/task")
    try:
        for task in task_dir.iterdir():
            with contextlib.suppress(OSError):
                kids.extend(int(p) for p in (task / "children").read_text().split())
    except OSError:
        return []
    return kids


class ServerProcess:
    """One server under test, its own process group, its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,  # its own group: stop() reaches its workers too
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def pids(self) -> list[int]:
        return descendants(self.pid) if self.process.poll() is None else []

    def log_tail(self, size: int = LOG_TAIL_BYTES) -> str:
        """The last `size` bytes of the server's log."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(max(0, self.log_path.stat().st_size - size))
                data = f.read()
        except OSError:
            return ""
        return data.decode("utf-8", "replace")

    def log_lines(self, levels: Sequence[str], limit: int) -> list[str]:
        """The first `limit` JSON log lines of the whole log at one of `levels`."""
        marks = tuple(f'"level":"{level}"'.encode() for level in levels)
        found: list[str] = []
        try:
            with self.log_path.open("rb") as f:
                for line in f:
                    if any(mark in line for mark in marks):
                        found.append(line.decode("utf-8", "replace"))
                        if len(found) >= limit:
                            break
        except OSError:
            pass
        return found

    def wait_ready(self, url: str, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Poll `url` until it answers with any HTTP status, or raise ServerError."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with status {self.process.returncode} before it "
                    f"answered {url}; its log ends:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1.0):
                    return
            except urllib.error.HTTPError:
                return  # it answered
            except (urllib.error.URLError, OSError):
                time.sleep(PROBE_INTERVAL_S)
        self.stop()
        raise ServerError(
            f"{self.name} did not answer {url} within {timeout_s:.0f} s; its log ends:\n"
            f"{self.log_tail()}"
        )

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, a bounded wait, then SIGKILL to what is left of ours; the exit status."""
        started = self.pids()  # ours: the server and its workers, before any exits
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5.0)
        # Workers left behind by a parent that died first: only those of our group.
        for pid in started[1:]:
            with contextlib.suppress(OSError):
                if os.getpgid(pid) == self.process.pid:
                    os.kill(pid, signal.SIGKILL)
        self._log.close()
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
