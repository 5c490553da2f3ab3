"""What the delivery tier of `streamer serve` spends, per part, and how far its log shipper is
behind: read from /proc and from the shipper's position file."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.procstat import cpu_ticks
from benchmarks.servers import ServerProcess
from cdn_edge.logship.offsets import OffsetFile
from cdn_edge.logship.process import default_state_path
from cdn_edge.nginx_tier.from_settings import tier_config
from streamer.settings import load_settings

CATCH_UP_POLL_S = 0.5


def _stat_fields(pid: int) -> list[str] | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return data[data.rindex(b")") + 2 :].decode().split()


def process_class(cmdline: str, comm: str) -> str:
    """Which part of the delivery tier a process of `streamer serve` is."""
    if comm == "nginx":
        return "nginx"
    if " logship " in f" {cmdline} ":
        return "logship"
    # The supervisor starts the edge with `--segments python`; its own may say `auto`.
    if "--segments python" in cmdline:
        return "edge"
    return "supervisor"


@dataclass(frozen=True)
class TierProcess:
    pid: int
    part: str  # process_class of the process, or of the nearest ancestor that has one
    cmdline: str
    comm: str


def tier_processes(root: int, pids: list[int]) -> list[TierProcess]:
    """The processes `pids` of the tree below `root` (`streamer serve`), each with its part;
    a worker belongs to the process that started it."""
    parent: dict[int, int] = {}
    own: dict[int, tuple[str, str, str]] = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is None:
            continue
        parent[pid] = int(fields[1])
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        own[pid] = (process_class(cmdline, comm), cmdline, comm)
    found = []
    for pid, (name, cmdline, comm) in own.items():
        up = pid
        while name == "supervisor" and up != root and parent.get(up) in own:
            up = parent[up]
            name = own[up][0]
        found.append(TierProcess(pid, name, cmdline, comm))
    return found


def server_ticks(server: ServerProcess) -> dict[str, int]:
    """utime + stime per part of the tier; a worker counts with the process that started it."""
    totals: dict[str, int] = {}
    for process in tier_processes(server.pid, server.pids()):
        totals[process.part] = totals.get(process.part, 0) + (cpu_ticks(process.pid) or 0)
    return totals


def shipper_lag_bytes(data_dir: Path) -> int:
    """Bytes of nginx's access log the shipper has not shipped (its position file)."""
    settings = load_settings(environ={}, data_dir=data_dir)
    log = tier_config(settings, "127.0.0.1:1").access_log
    try:
        size = log.stat()
    except FileNotFoundError:
        return 0
    position = OffsetFile(default_state_path(settings, log)).load()  # read only, no lock
    if position is None or (position.device, position.inode) != (size.st_dev, size.st_ino):
        return size.st_size
    return max(0, size.st_size - position.offset)


def catch_up_s(data_dir: Path, timeout_s: float) -> float | None:
    """Seconds until the shipper reached the log's end, None if not within `timeout_s`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if shipper_lag_bytes(data_dir) == 0:
            return round(time.monotonic() - started, 1)
        time.sleep(CATCH_UP_POLL_S)
    return None
