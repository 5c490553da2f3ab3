"""The soak: its flatness rule, its sampling of a process tree from /proc, its report, and a
one-minute run end to end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from benchmarks.servers import descendants
from benchmarks.soak import main, parse_args
from benchmarks.soak_judge import MIB, Series, judge_all, judge_flat, judge_latency, overall
from benchmarks.soak_report import render_markdown, rows_of, series_of, window_at, write_plots
from benchmarks.soak_sampler import (
    DiskPaths,
    ProcessSample,
    Sample,
    open_fds,
    role_of,
    sample_tree,
    take_sample,
    tree_bytes,
)
from benchmarks.vegeta_install import VegetaUnavailable, ensure_vegeta

# The flatness rule.


def _series(*values: float | None, floor: float = 0.0, pids: tuple[int | None, ...] = ()) -> Series:
    return Series("s", "bytes", tuple((60.0 * i, v) for i, v in enumerate(values)), floor, pids)


def test_growth_within_ten_percent_of_the_first_value_after_warm_up_is_flat() -> None:
    verdict = judge_flat(_series(50, 100, 105, 110, 108), warmup_s=60)
    assert verdict.ok is True
    assert (verdict.baseline, verdict.baseline_t_s, verdict.limit) == (100, 60, 110)
    assert (verdict.worst, verdict.worst_t_s) == (110, 180)


def test_growth_beyond_ten_percent_fails_and_says_by_how_much_and_when() -> None:
    verdict = judge_flat(_series(100, 100, 105, 111), warmup_s=60)
    assert verdict.ok is False
    assert verdict.note == "grew +11.0% by 180 s"


def test_growth_during_warm_up_is_not_judged() -> None:
    assert judge_flat(_series(10, 50, 100, 100, 100), warmup_s=120).ok is True


def test_a_series_at_zero_may_grow_by_its_floor_and_no_more() -> None:
    assert judge_flat(_series(0, 0, MIB, 0, floor=MIB), warmup_s=0).ok is True
    verdict = judge_flat(_series(0, 0, MIB + 1, 0, floor=MIB), warmup_s=0)
    assert verdict.ok is False
    assert verdict.note == f"grew from 0 to {MIB + 1:,} by 120 s"


def test_a_process_that_restarts_or_goes_after_warm_up_fails() -> None:
    restarted = judge_flat(_series(100, 100, 90, pids=(7, 7, 8)), warmup_s=0)
    assert restarted.ok is False and restarted.note == "restarted at 120 s (pid 7 -> 8)"
    gone = judge_flat(_series(100, 100, None, pids=(7, 7, None)), warmup_s=0)
    assert gone.ok is False and gone.note == "gone at 120 s"


def test_fewer_than_two_samples_after_warm_up_are_not_judged() -> None:
    verdict = judge_flat(_series(100, 200, 300), warmup_s=120)
    assert verdict.ok is None and verdict.result == "not judged"


def _window(from_s: int, p99: float, errors: int = 0, segments: int = 100) -> dict[str, Any]:
    ok = errors == 0 and p99 < 100 and segments > 0
    return {"from_s": from_s, "segment_p99_ms": p99, "errors": errors, "segments": segments,
            "ok": ok, "listeners": 10, "requests": segments}  # fmt: skip


def test_latency_is_judged_against_the_target_in_every_window_after_warm_up() -> None:
    windows = [_window(0, 500), _window(60, 20), _window(120, 99.9), _window(180, 30)]
    verdict = judge_latency(windows, window_s=60, warmup_s=60, target_ms=100)
    assert verdict.ok is True and (verdict.worst, verdict.worst_t_s) == (99.9, 180)
    windows.append(_window(240, 10, errors=3))
    failed = judge_latency(windows, window_s=60, warmup_s=60, target_ms=100)
    assert failed.ok is False
    assert failed.note == "1 of 4 windows failed, the first ending at 300 s; 3 errors"


def test_overall_fails_on_any_failure_and_ignores_what_was_not_judged() -> None:
    verdicts = judge_all(
        [_series(1, 1, 1), _series(1, 2, 3, 4), Series("store", "bytes", (), judged=False)],
        [_window(0, 5), _window(60, 5)],
        window_s=60,
        warmup_s=0,
        target_ms=100,
    )
    assert [v.ok for v in verdicts] == [True, True, False]
    assert overall(verdicts) is False
    assert overall(verdicts[:2]) is True
    assert overall([judge_flat(_series(1), 0)]) is None


# Sampling from /proc.


def test_roles_within_the_parts_of_the_tier() -> None:
    assert role_of("nginx", "nginx: worker process", "nginx") == "nginx worker"
    assert role_of("nginx", "nginx: master process /usr/sbin/nginx -p d", "nginx") == (
        "nginx master"
    )
    spawn = "python -B -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5)"
    assert role_of("edge", spawn, "python") == "edge worker"
    edge = "python -m streamer_app.cli serve --segments python --port 1"
    assert role_of("edge", edge, "python") == "edge"
    assert role_of("logship", "python -m streamer_app.cli logship --log a", "python") == "logship"
    assert role_of("supervisor", "python -m streamer_app.cli serve --segments auto", "python") == (
        "supervisor"
    )


def test_open_fds_counts_this_process_descriptors_and_its_sockets() -> None:
    before = open_fds(os.getpid())
    assert before is not None
    with open(__file__) as _f, socket.socket() as _s1, socket.socket() as _s2:
        assert open_fds(os.getpid()) == (before[0] + 3, before[1] + 2)
    assert open_fds(2**22 + 1) is None  # above pid_max: no such process


def test_sample_tree_reads_every_process_of_a_tree_below_its_root(tmp_path: Path) -> None:
    # A child that holds four extra files open and starts a grandchild, both sleeping.
    script = (
        "import subprocess, sys, time\n"
        f"held = [open({__file__!r}) for _ in range(4)]\n"
        "code = 'import time; print(1, flush=True); time.sleep(60)'\n"
        "kid = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE)\n"
        "kid.stdout.readline()\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        pids = descendants(child.pid)
        assert len(pids) == 2
        samples = sample_tree(child.pid, pids)
        assert sorted(s.pid for s in samples) == sorted(pids)
        # Neither names a part of the tier: both are the root's part, numbered by pid.
        assert [s.label for s in samples] == ["supervisor 1", "supervisor 2"]
        by_pid = {s.pid: s for s in samples}
        root, kid = by_pid[child.pid], by_pid[pids[1]]
        assert root.open_fds == len(os.listdir(f"/proc/{child.pid}/fd"))
        assert root.open_fds >= 3 + 4 and kid.open_fds >= 3  # type: ignore[operator]
        assert root.sockets == kid.sockets == 0
        assert all(s.rss_bytes > 1 * MIB and s.cpu_ticks >= 0 for s in samples)
    finally:
        for pid in reversed(descendants(child.pid)):
            os.kill(pid, 9)
        child.wait(timeout=10)
        child.stdout.close()  # type: ignore[union-attr]


def test_disk_sizes_of_a_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    paths = DiskPaths.of(data)
    assert paths.spool == data / "spool" and paths.nginx_prefix == (data / "nginx").resolve()
    (paths.spool / "worker-0").mkdir(parents=True)
    (paths.spool / "worker-0" / "00000001.spool").write_bytes(b"x" * 1000)
    paths.nginx_logs.mkdir(parents=True)
    for path in paths.access_logs:
        path.write_bytes(b"l" * 300)
    (paths.nginx_prefix / "playlists").mkdir()
    (paths.nginx_prefix / "playlists" / "a").write_bytes(b"p" * 40)
    (data / "sessions.sqlite3").write_bytes(b"s" * 70)
    (data / "sessions.sqlite3-wal").write_bytes(b"w" * 7)
    assert tree_bytes(paths.spool) == 1000 and tree_bytes(data / "nowhere") == 0
    sample = take_sample(os.getpid(), [os.getpid()], paths, 1.5, None)
    assert sample.spool_bytes == 1000
    assert sample.nginx_cache_bytes == 40  # the logs are not the cache
    assert sample.stores_bytes == {
        "sessions.sqlite3": 70,
        "sessions.sqlite3-wal": 7,
        "nginx access log": 300,
    }
    assert sample.shipper_lag_bytes == 300  # no position saved: the whole log is behind
    assert sample.telemetry_dropped is None and sample.t_s == 1.5
    assert [p.pid for p in sample.processes] == [os.getpid()]


# The report.


def _sample(t_s: float, edge_rss_mib: float, edge_pid: int = 20, spool: int = 0) -> Sample:
    edge = ProcessSample(
        "edge worker 1", "edge", edge_pid, int(edge_rss_mib * MIB), 40, 25, int(t_s)
    )
    nginx = ProcessSample("nginx worker", "nginx", 30, 8 * MIB, 12 + int(t_s), 2 + int(t_s), 0)
    return Sample(
        t_s=t_s,
        wall_s=1_800_000_000 + t_s,
        processes=(edge, nginx),
        spool_bytes=spool,
        nginx_cache_bytes=16_000,
        shipper_lag_bytes=0,
        stores_bytes={"sessions.sqlite3": int(t_s * 1000), "nginx access log": int(t_s * 500)},
        machine_busy_ticks=int(t_s * 150),
        telemetry_dropped=0.0,
    )


def test_report_rows_verdicts_and_markdown(tmp_path: Path) -> None:
    samples = [_sample(0, 100), _sample(60, 120), _sample(120, 121), _sample(180, 140)]
    windows = [_window(0, 3), _window(60, 4), _window(120, 150)]
    series = series_of(samples)
    names = [s.name for s in series]
    assert names[:6] == [
        "RSS edge worker 1",
        "open files edge worker 1",
        "sockets edge worker 1",
        "RSS nginx worker",
        "open files nginx worker",
        "sockets nginx worker",
    ]
    assert [v for _, v in series[4].points] == [10, 10, 10, 10]  # but sockets
    assert "store sessions.sqlite3" in names
    verdicts = judge_all(series, windows, window_s=60, warmup_s=60, target_ms=100)
    by_name = {v.series: v for v in verdicts}
    assert by_name["RSS edge worker 1"].ok is False  # 120 -> 140 MiB: +16.7 %
    assert by_name["open files nginx worker"].ok is True
    assert by_name["segment p99 per window"].ok is False
    assert "store sessions.sqlite3" not in by_name  # reported, not judged
    assert "sockets nginx worker" not in by_name  # the load generator's connections

    assert window_at(windows, 0, 60) is None and window_at(windows, 120, 60) == windows[1]
    rows = rows_of(samples, windows, 60)
    assert rows[0]["cores"] is None and rows[0]["segment_p99_ms"] is None
    assert rows[2]["segment_p99_ms"] == 4
    tick = os.sysconf("SC_CLK_TCK")
    assert rows[1]["cores"]["edge"] == pytest.approx(60 / tick / 60, abs=1e-3)
    assert rows[1]["cores"]["machine"] == pytest.approx(9000 / tick / 60, abs=1e-3)

    doc = {
        "command": "python -m benchmarks.soak --minutes 3",
        "date": "2027-01-15 08:00 UTC",
        "machine": {"cores": 2},
        "load_average": {"start": "0.10 0.20 0.30", "end": "1.00 1.00 1.00"},
        "listeners": 6000,
        "minutes": 3,
        "sample_s": 60,
        "warmup_s": 60,
        "flat": overall(verdicts),
        "verdicts": [v.__dict__ for v in verdicts],
        "rows": rows,
        "paced": {
            "paced_requests": 1000,
            "paced_rate_per_s": 5.5,
            "heartbeats": 10,
            "phase_s": 180,
        },
    }
    text = render_markdown(doc)
    assert "# Soak: 6,000 listeners for 3 min" in text
    assert "Verdict: **not flat: FAIL**" in text
    row = "| RSS edge worker 1 | 120.00 MiB | 140.00 MiB (180) | 132.00 MiB | FAIL | grew +16.7%"
    assert row in text
    assert "| 120 | 100 | 4.0 | 0 | 0.0 | 0.0 | 0.0 | 0.1 | 0.1 |" in text
    assert "| 180 | 140.0 / 15 / 25 | 8.0 / 10 / 182 |" in text

    pytest.importorskip("matplotlib")
    plots = write_plots(series, verdicts, windows, 60, tmp_path)
    assert plots is not None
    assert sorted(p.name for p in plots) == [
        "nginx_cache.png", "open_files.png", "rss.png", "segment_p99.png", "shipper_lag.png",
        "sockets.png", "spool.png", "stores.png",
    ]  # fmt: skip
    assert all(p.stat().st_size > 1000 for p in plots)


def test_options_leave_at_least_two_samples_after_warm_up(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = parse_args(["--minutes", "1", "--sample-s", "10", "--warmup-s", "20"])
    assert (args.duration, args.track_seconds, args.listeners, args.workers) == (60, 120, 6000, 2)
    with pytest.raises(SystemExit):
        parse_args(["--minutes", "1", "--sample-s", "10", "--warmup-s", "50"])
    assert "leaves fewer than two samples" in capsys.readouterr().err


# End to end.


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_one_minute_soak_of_200_listeners_samples_every_process_and_stays_flat(
    tmp_path: Path,
) -> None:
    try:
        ensure_vegeta()
    except VegetaUnavailable as exc:  # Go and its module proxy are part of the machine
        pytest.fail(f"the soak smoke test needs vegeta: {exc}", pytrace=False)
    began = time.monotonic()
    status = main(
        [
            "--minutes", "1", "--sample-s", "10", "--warmup-s", "20", "--listeners", "200",
            "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
        ]
    )  # fmt: skip
    assert status == 0
    doc = json.loads((tmp_path / "out" / "soak.json").read_text())
    rows = doc["rows"]
    assert [round(r["t_s"] / 10) for r in rows] == list(range(7))  # 0, 10, ... 60 s
    labels = set(rows[1]["processes"])
    assert {"supervisor", "edge", "edge worker 1", "edge worker 2", "logship", "nginx master",
            "nginx worker 1", "nginx worker 2"} <= labels  # fmt: skip
    for row in rows[1:]:
        assert row["errors"] == 0 and 0 < row["segment_p99_ms"] < 100
        for p in row["processes"].values():
            assert p["rss_bytes"] > 0 and p["open_fds"] > p["sockets"] >= 0
        assert row["processes"]["nginx worker 1"]["sockets"] > 0
    assert rows[-1]["stores_bytes"]["sessions.sqlite3"] > 0
    assert (
        rows[-1]["stores_bytes"]["nginx access log"] > rows[1]["stores_bytes"]["nginx access log"]
    )
    verdicts = {v["series"]: v for v in doc["verdicts"]}
    assert verdicts["segment p99 per window"]["ok"] is True
    for name in ("telemetry spool", "nginx cache", "shipper lag", "RSS edge worker 1"):
        assert verdicts[name]["ok"] is not None, name
    assert doc["paced"]["endpoints"]["segment"]["errors"] == 0
    assert (tmp_path / "out" / "soak.md").read_text().startswith("# Soak: 200 listeners")
    assert (tmp_path / "out" / "rss.png").exists()
    assert time.monotonic() - began < 360
