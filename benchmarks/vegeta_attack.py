"""vegeta attacks as child processes: started on a targets file, reaped with their CPU time,
their results read back as JSON lines."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REQUEST_TIMEOUT = "10s"  # vegeta -timeout: connect to last byte
POLL_S = 0.2
PROGRESS_EVERY_S = 10.0
INTERRUPT_WAIT_S = 30.0  # after SIGINT, for vegeta to stop and flush its results
ENCODE_TIMEOUT_S = 60.0  # after its output ends


@dataclass
class Attack:
    name: str
    process: subprocess.Popen[bytes]
    results: Path
    log: Path
    cpu_s: float | None = None  # vegeta's utime + stime, once it has exited


def start_attack(
    vegeta: Path,
    name: str,
    targets: Path,
    rate: str,
    connections: int,
    work: Path,
    json_format: bool = False,
) -> Attack:
    results = work / f"{name}.results.bin"
    argv = [
        str(vegeta), "attack", "-name", name, "-targets", str(targets),
        "-format", "json" if json_format else "http",
        "-lazy",  # read as sent: the targets file of 20,000 listeners is ~375 MB
        "-rate", rate, "-duration", "0",  # to the end of the targets file
        "-timeout", REQUEST_TIMEOUT, "-keepalive=true", "-max-body", "0",
        # An idle pool as large as the most connections, so none is closed and reopened;
        # workers grow as answers slow down (vegeta adds one whenever all are busy), up to
        # one per connection, past which requests would wait for a worker off the schedule.
        "-connections", str(connections), "-max-connections", str(connections),
        "-workers", str(min(64, connections)), "-max-workers", str(connections),
        "-output", str(results),
    ]  # fmt: skip
    log = work / f"{name}.vegeta.log"
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    return Attack(name, process, results, log)


def wait_attacks(attacks: list[Attack], deadline_s: float, progress: Callable[[], None]) -> bool:
    """Reap the attacks (their CPU from wait4), interrupting any still running at the deadline;
    whether one had to be interrupted."""
    interrupted = False
    next_progress = time.monotonic() + PROGRESS_EVERY_S
    try:
        while any(a.cpu_s is None for a in attacks):
            for attack in attacks:
                if attack.cpu_s is None:
                    _reap(attack)
            now = time.monotonic()
            if now >= deadline_s and not interrupted:
                for attack in attacks:
                    if attack.cpu_s is None:  # SIGINT: vegeta stops and writes its results
                        attack.process.send_signal(signal.SIGINT)
                interrupted = True
                deadline_s = now + INTERRUPT_WAIT_S
            elif interrupted and now >= deadline_s:
                for attack in attacks:
                    if attack.cpu_s is None:
                        attack.process.kill()
            if now >= next_progress:
                progress()
                next_progress = now + PROGRESS_EVERY_S
            time.sleep(POLL_S)
    finally:
        for attack in attacks:  # on an exception here (Ctrl-C): none is left running
            if attack.cpu_s is None:
                attack.process.kill()
                attack.process.wait(timeout=INTERRUPT_WAIT_S)
    for attack in attacks:
        if attack.process.returncode != 0:
            log = attack.log.read_text(errors="replace")[-2000:]
            raise RuntimeError(
                f"vegeta attack {attack.name} exited with status {attack.process.returncode}:\n"
                f"{log}"
            )
    return interrupted


def _reap(attack: Attack) -> None:
    pid, status, usage = os.wait4(attack.process.pid, os.WNOHANG)
    if pid:
        attack.process.returncode = os.waitstatus_to_exitcode(status)
        attack.cpu_s = usage.ru_utime + usage.ru_stime


def encoded_results(vegeta: Path, results: Path) -> Iterator[str]:
    """The results file as JSON lines, streamed from `vegeta encode`."""
    process = subprocess.Popen(
        [str(vegeta), "encode", "--to", "json", str(results)],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        yield from process.stdout
    finally:
        process.stdout.close()
        if process.wait(timeout=ENCODE_TIMEOUT_S) != 0:
            raise RuntimeError(f"vegeta encode {results} exited with {process.returncode}")
