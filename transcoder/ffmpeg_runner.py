"""Run ffmpeg processes side by side under one deadline, reporting progress as they go.

Children die with us: each is started through util-linux `setpriv --pdeathsig KILL`, so a
worker killed mid-job (even by SIGKILL) does not leave ffmpeg writing into its work directory.
(The signal fires when the thread that started the child ends; `run_parallel` outlives them.)
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from transcoder.errors import EncodeTimeout

ProgressCallback = Callable[[float], None]
"""Called with the seconds of output written so far by the slowest process."""


@dataclass(frozen=True)
class FfmpegResult:
    returncode: int
    log: str  # stderr, each line prefixed with its level ("[error] ...") by -loglevel level+...
    out_time_s: float  # last progress position reported


def _with_parent_death_signal(args: Sequence[str]) -> list[str]:
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *args] if setpriv else list(args)


class _Watched:
    def __init__(self, args: Sequence[str]) -> None:
        self.process = subprocess.Popen(
            _with_parent_death_signal(args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.out_time_s = 0.0
        self.stderr_chunks: list[bytes] = []
        self._threads = [
            threading.Thread(target=self._read_progress, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_progress(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(b"out_time_us="):
                value = line.split(b"=", 1)[1].strip()
                if value.isdigit():
                    self.out_time_s = int(value) / 1e6

    def _read_stderr(self) -> None:
        stderr = self.process.stderr
        assert stderr is not None
        for chunk in iter(lambda: stderr.read(65536), b""):
            self.stderr_chunks.append(chunk)

    def finish(self) -> FfmpegResult:
        returncode = self.process.wait()
        self.close()
        log = b"".join(self.stderr_chunks).decode(errors="replace")
        return FfmpegResult(returncode, log, self.out_time_s)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.close()

    def close(self) -> None:
        for thread in self._threads:
            thread.join(timeout=5)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


def run_parallel(
    commands: Sequence[Sequence[str]],
    *,
    deadline_s: float,
    on_progress: ProgressCallback | None = None,
    poll_s: float = 0.25,
) -> list[FfmpegResult]:
    """Run every command at once; kill them all if they are not done within `deadline_s`."""
    started = time.monotonic()
    running = [_Watched(args) for args in commands]
    try:
        while any(w.process.poll() is None for w in running):
            if time.monotonic() - started > deadline_s:
                raise EncodeTimeout(
                    f"ffmpeg did not finish within {deadline_s:.0f} s and was stopped; "
                    "the job will be retried"
                )
            if on_progress is not None:
                on_progress(min(w.out_time_s for w in running))
            time.sleep(poll_s)
        results = [w.finish() for w in running]
        if on_progress is not None:
            on_progress(min(r.out_time_s for r in results))
        return results
    finally:
        for watched in running:
            watched.kill()
