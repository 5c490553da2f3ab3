"""`streamer` child processes of the tier (the edge, the shipper): started, signalled, stopped.

Each child leads its own process group, so a terminal's Ctrl-C reaches only `streamer serve`,
which then stops the children in order, and so a child's own children (edge workers) are
stopped with it. Each carries a parent-death signal (util-linux `setpriv --pdeathsig TERM`,
as nginx_tier/process.py does): a killed `serve` does not leave them running. Linux sends it
when the *thread* that started the child ends, so start children from the main thread.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

KILL_WAIT_S = 5.0
STOP_TIMEOUT_S = 10.0  # a child's own graceful stop; the shipper finishes its batch


class Child:
    """A running child process and its process group."""

    def __init__(self, name: str, process: subprocess.Popen[bytes]) -> None:
        self.name = name
        self.process = process

    def __repr__(self) -> str:
        return f"{self.name}(pid={self.process.pid})"

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = STOP_TIMEOUT_S, sig: int = signal.SIGTERM) -> int | None:
        """Send `sig`, wait up to `timeout_s`, then kill the whole group; the exit status."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout_s)
        if self.running():
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(KILL_WAIT_S)
        # Whatever the child left behind in its group (edge workers of a killed supervisor).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.returncode


def start_child(
    name: str, args: Sequence[str], env: Mapping[str, str] | None = None, *, nice: int = 0
) -> Child:
    """Start `args` in its own session, with stdout and stderr shared with ours, `nice` steps
    below our CPU priority (coreutils `nice`, so the child's own children inherit it, and the
    session's autogroup)."""
    setpriv = shutil.which("setpriv")
    command = [setpriv, "--pdeathsig", "TERM", "--", *args] if setpriv else list(args)
    if nice:
        command = [shutil.which("nice") or "nice", "-n", str(nice), *command]
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, env=None if env is None else dict(env),
        start_new_session=True,
    )  # fmt: skip
    if nice:
        _nice_session(process.pid, nice)
    return Child(name, process)


def _nice_session(pid: int, nice: int) -> None:
    """With autogroup scheduling (sched(7), on by default in most kernels) a session competes
    for the CPU as one group, whatever its processes' nice values: a child that leads its own
    session would get an equal share beside nginx. So the group's nice is set as well (the
    child has called setsid by the time Popen returns). Without autogroups there is no file."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/autogroup").write_text(f"{nice}\n")
