"""Ingest speed: our full ingest of a 3.5-minute master against plain ffmpeg on the same ladder.

    python -m benchmarks.transcode [--seconds 210] [--runs 3] [--json out.json]

Each round runs, on the same generated master and in alternating order, the plain ffmpeg
baselines (the same ladder as one process with asplit, and as two processes balanced by cost,
both writing HLS fMP4 and nothing else) and our ingest (probe, encode with the EBU R128 meter,
package, encrypt, publish to a local object store, verify). The ratio is our median wall time
over the fastest baseline's median. Peak memory is our Python process's and the largest ffmpeg
child's maximum RSS.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.stats import summarize
from drm import KeyRing, new_kek
from streamer.objects.local import LocalObjectStore
from streamer.settings import load_settings
from transcoder.encode_plan import SourceFormat, plan_encode
from transcoder.ladder import DEFAULT_LADDER
from transcoder.pipeline import ingest_master
from transcoder.sample_master import write_sample_master

TARGET_RATIO = 1.15


def _plain_args(args: tuple[str, ...]) -> list[str]:
    """Our planned command without the loudness meter and progress reporting."""
    out = list(args)
    drop = {"-progress": 2, "-loglevel": 2}
    for flag, width in drop.items():
        if flag in out:
            index = out.index(flag)
            del out[index : index + width]
    graph_at = out.index("-filter_complex") + 1
    graph = out[graph_at]
    if "[meter]" in graph:
        graph = graph.split(";")[0].replace("[meter]", "")
        branches = graph.count("[r")
        head, _, _ = graph.rpartition("asplit=")
        graph = head + f"asplit={branches}" + "".join(f"[r{i}]" for i in range(branches))
    out[graph_at] = graph
    return ["ffmpeg", "-v", "error", *out[1:]]


def _baseline(master: Path, work: Path, processes: int) -> float:
    shutil.rmtree(work, ignore_errors=True)
    for spec in DEFAULT_LADDER:
        (work / spec.name).mkdir(parents=True)
    source = SourceFormat(44_100, 2, 16)
    plan = plan_encode(master, source, DEFAULT_LADDER, work, segment_s=6, processes=processes)
    started = time.perf_counter()
    running = [subprocess.Popen(_plain_args(p.args)) for p in plan]
    codes = [p.wait(timeout=600) for p in running]
    elapsed = time.perf_counter() - started
    if any(codes):
        raise RuntimeError(f"baseline ffmpeg failed: exit codes {codes}")
    return elapsed


def _ours(master: Path, root: Path, run: int) -> float:
    settings = load_settings(environ={}, data_dir=root / "data")
    kek = new_kek()
    store = LocalObjectStore(root / f"objects-{run}")
    started = time.perf_counter()
    ingest_master(
        master,
        track_id=f"bench{run}",
        metadata={},
        settings=settings,
        store=store,
        ring=KeyRing(kek.kek_id, (kek,)),
        work_dir=root / "work",
    )
    elapsed = time.perf_counter() - started
    shutil.rmtree(root / f"objects-{run}", ignore_errors=True)
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=210.0, help="master length")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-transcode-") as tmp:
        root = Path(tmp)
        master = write_sample_master(root / "master.flac", seconds=args.seconds)
        samples: dict[str, list[float]] = {"ffmpeg_1proc": [], "ffmpeg_2proc": [], "ours": []}
        for run in range(args.runs):
            order = ["ours", "ffmpeg_2proc", "ffmpeg_1proc"]
            if run % 2:
                order.reverse()
            for name in order:
                if name == "ours":
                    samples[name].append(_ours(master, root, run))
                else:
                    processes = 1 if name == "ffmpeg_1proc" else 2
                    samples[name].append(_baseline(master, root / "baseline", processes))
                print(f"run {run + 1}/{args.runs} {name:13} {samples[name][-1]:6.2f} s", flush=True)

    summaries = {name: summarize(values) for name, values in samples.items()}
    fastest = min(("ffmpeg_1proc", "ffmpeg_2proc"), key=lambda n: summaries[n].median)
    ratio = summaries["ours"].median / summaries[fastest].median
    ours_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {_cores()} cores, {_memory_gib():.0f} GiB",
        "master_s": args.seconds,
        "wall_s": {name: vars(summary) for name, summary in summaries.items()},
        "x_realtime_ours": args.seconds / summaries["ours"].median,
        "fastest_baseline": fastest,
        "ratio_to_fastest_baseline": ratio,
        "target_ratio": TARGET_RATIO,
        "peak_rss_mib": {"python": ours_rss_mib, "largest_ffmpeg": child_rss_mib},
    }
    print()
    for name, summary in summaries.items():
        print(f"{name:13} wall {summary} s  ({args.seconds / summary.median:.1f}x realtime)")
    print(f"ratio ours / {fastest}: {ratio:.3f} (target <= {TARGET_RATIO})")
    print(f"peak RSS: python {ours_rss_mib:.0f} MiB, largest ffmpeg {child_rss_mib:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


def _memory_gib() -> float:
    with open("/proc/meminfo") as meminfo:
        total_kib = int(meminfo.readline().split()[1])
    return total_kib / 1024 / 1024


if __name__ == "__main__":
    main()
