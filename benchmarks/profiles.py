"""Sampling profiles of the edge while it is under load: py-spy, and a short text summary.

`py-spy record --format raw` writes collapsed stacks (one "frame;frame;... count" line per
distinct stack), which flamegraph.pl, speedscope and `py-spy` itself can draw; `summarize`
turns them into the top functions by own and by inclusive time, good enough to name a hot spot
in a review. Sampling costs the edge a little CPU: profiled runs are not for the numbers.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

SAMPLE_RATE_HZ = 97  # not a divisor of common timer rates, so samples do not alias
FINISH_TIMEOUT_S = 30.0
_LINE_NUMBER = re.compile(r":\d+\)$")


def py_spy() -> str | None:
    found = shutil.which("py-spy")
    beside = Path(sys.executable).with_name("py-spy")
    return found or (str(beside) if beside.exists() else None)


def start(
    pid: int, out: Path, duration_s: float, *, gil_only: bool = False
) -> subprocess.Popen[bytes] | None:
    """py-spy sampling `pid` and its children for `duration_s`; None without py-spy.

    `gil_only` keeps only samples of threads holding the interpreter lock: without it, a
    thread waiting for the lock inside a C call (the telemetry writer's SQLite) counts as
    busy, which made its share look six times what /proc shows it uses."""
    spy = py_spy()
    if spy is None:
        return None
    argv = [
        spy, "record", "--pid", str(pid), "--subprocesses", "--nonblocking",
        "--rate", str(SAMPLE_RATE_HZ), "--duration", str(max(1, round(duration_s))),
        "--format", "raw", "-o", str(out), *(["--gil"] if gil_only else []),
    ]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def finish(process: subprocess.Popen[bytes]) -> None:
    try:
        process.wait(timeout=FINISH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5.0)


def summarize(collapsed: Path, top: int = 25) -> str:
    """The functions with the most samples, on their own and with what they call."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        # The first frame names the process; the rest are "function (file:line)".
        frames = [_LINE_NUMBER.sub(")", f) for f in stack.split(";")[1:]]
        if not frames:
            continue
        own[frames[-1]] += samples
        for frame in set(frames):
            inclusive[frame] += samples
    if not total:
        return f"{collapsed.name}: no samples\n"
    lines = [f"{collapsed.name}: {total} samples (all threads of all processes)", "", "own:"]
    lines += [f"{100 * n / total:6.1f}%  {f}" for f, n in own.most_common(top)]
    lines += ["", "inclusive:"]
    lines += [f"{100 * n / total:6.1f}%  {f}" for f, n in inclusive.most_common(top)]
    return "\n".join(lines) + "\n"
