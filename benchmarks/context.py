"""What every phase of a listener benchmark run shares: the target edge and the run's tools."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen

from benchmarks import profiles
from benchmarks.edge_setup import Track
from benchmarks.procstat import ProcessSampler
from benchmarks.progress import ProgressLine
from benchmarks.servers import ServerProcess


@dataclass
class Target:
    """The edge under load: its URL and how to get listener tokens for it."""

    url: str
    track_id: str
    tokens: Callable[[int], list[str]]  # n listener tokens
    edge: ServerProcess | None = None  # None when driving a running edge (--url)
    track: Track | None = None  # its files, for nginx; None with --url
    workers: int | None = None


@dataclass
class Bench:
    """One run: the command line, the CPU sampler, the progress line, where results go."""

    args: argparse.Namespace
    sampler: ProcessSampler
    progress: ProgressLine
    out_dir: Path
    work: Path  # temporary: baselines' configs, logs and copies of segments
    notes: list[str] = field(default_factory=list)

    def start_profile(self, pid: int, name: str, duration_s: float) -> Popen[bytes] | None:
        """py-spy on `pid` for `duration_s` into profile-<name>.txt (see benchmarks.profiles)."""
        process = profiles.start(pid, self.out_dir / f"profile-{name}.txt", duration_s)
        if process is None:
            self.notes.append("--profile: py-spy is not installed (pip install py-spy)")
        return process

    def end_profile(self, process: Popen[bytes], name: str) -> None:
        profiles.finish(process)
        collapsed = self.out_dir / f"profile-{name}.txt"
        if collapsed.exists():
            summary = profiles.summarize(collapsed)
            (self.out_dir / f"profile-{name}.top.txt").write_text(summary)
