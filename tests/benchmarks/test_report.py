"""The report: recordings summarised, phases to medians and ratios, targets, JSON/Markdown/PNG."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.listeners import build_parser
from benchmarks.paced_mode import held_listeners
from benchmarks.rate_mode import in_step, ratios, summarize_phases
from benchmarks.recording import Recording, summarize_endpoint, time_line
from benchmarks.report import FAIL, PASS, UNKNOWN, machine_info, render_markdown, write_reports
from benchmarks.session_pool import SessionUrls
from benchmarks.targets import evaluate_targets


def _recording(rate_per_s: int, latency_ms: float, seconds: int = 10) -> Recording:
    rec = Recording(started=100.0)
    for second in range(seconds):
        for i in range(rate_per_s):
            start = 100.0 + second + i / rate_per_s
            rec.success("playlist", start, start + latency_ms / 1000, 1024)
    return rec


def _phase(label: str, server: str, endpoint: str, run: int, rps: int, ms: float) -> dict:
    rec = _recording(rps, ms, seconds=4)
    record = rec.endpoint("playlist")
    cpu = {"cpu_s": 4.0, "cpu_cores_mean": 1.0, "cpu_cores_max": 1.0, "rss_mib_max": 80.0,
           "rss_mib_last": 80.0}  # fmt: skip
    return {
        "label": label,
        "server": server,
        "endpoint": endpoint,
        "run": run,
        "connections": 64,
        "rate_per_s": None,
        "seconds": 4.0,
        "urls": 10,
        "result": summarize_endpoint(record, 4.0),
        "server_cpu": cpu,
        "client_cpu": cpu,
        "client_cpu_s_total": 5.0,
        "server_cpu_us_per_request": 4e6 / (rps * 4),
        "client_cpu_us_per_request": None,
        "counters": {},
        "timeline": time_line(record),
    }


def _args(*argv: str) -> argparse.Namespace:
    args = build_parser().parse_args(list(argv))
    args.baselines = {"nginx", "hmac"}
    return args


def test_endpoint_summary_counts_rate_latency_and_bytes():
    rec = _recording(rate_per_s=100, latency_ms=2.0)
    rec.failure("playlist", "http_500", 105.0)
    summary = summarize_endpoint(rec.endpoint("playlist"), 10.0)
    assert summary["ok"] == 1000 and summary["errors"] == 1
    assert summary["errors_by_kind"] == {"http_500": 1}
    assert summary["requests_per_s"] == pytest.approx(100.0)
    assert summary["latency_ms"]["p50"] == pytest.approx(2.0, rel=0.01)
    assert summary["bytes"] == 1024 * 1000
    line = time_line(rec.endpoint("playlist"))
    assert [p["ok"] for p in line] == [100] * 10
    assert line[5]["errors"] == 1


def test_recordings_merge_and_survive_the_pipe():
    a, b = _recording(10, 1.0), _recording(20, 3.0)
    a.active_by_second[0] = 5
    b.active_by_second[0] = 7
    b.counters["late_segments"] = 2
    merged = Recording.from_dict(a.to_dict())
    merged.merge(Recording.from_dict(b.to_dict()))
    assert merged.endpoint("playlist").ok == 300
    assert merged.active_by_second[0] == 12
    assert merged.counters["late_segments"] == 2


def test_held_listeners_stops_at_the_first_window_over_target():
    rec = Recording(started=0.0)
    for second in range(20):
        rec.active_by_second[second] = 100 * (second + 1)
        latency = 0.005 if second < 12 else 0.5  # slow from second 12: window 10-14 fails
        for _ in range(50):
            rec.success("segment", second + 0.1, second + 0.1 + latency, 1000)
    held, held_all, windows = held_listeners(rec, window_s=5, p99_ms=100.0, duration_s=20)
    assert (held, held_all) == (1000, False)
    assert [w["ok"] for w in windows] == [True, True, False, False]


def test_held_listeners_fails_a_window_with_errors_or_without_segments():
    rec = Recording(started=0.0)
    for second in range(10):
        rec.active_by_second[second] = 10
        rec.success("segment", second + 0.1, second + 0.11, 1000)
    rec.failure("key", "http_429", 7.5)
    held, held_all, _ = held_listeners(rec, 5, 100.0, 15)
    assert (held, held_all) == (10, False)
    quiet = Recording(started=0.0)
    quiet.active_by_second[0] = 3
    assert held_listeners(quiet, 5, 100.0, 5)[:2] == (0, False)


def test_phases_become_medians_ratios_and_targets():
    phases = [
        _phase("edge (2 workers)", "edge", "playlist", run, rps, 3.0)
        for run, rps in ((1, 900), (2, 1000), (3, 1100))
    ] + [
        _phase("aiohttp HMAC", "hmac", "playlist", run, rps, 1.0)
        for run, rps in ((1, 1400), (2, 1500), (3, 1600))
    ]
    rows = summarize_phases(phases)
    edge = next(r for r in rows if r["server"] == "edge")
    assert edge["requests_per_s"] == {"median": 1000.0, "low": 900.0, "high": 1100.0, "runs": 3}
    assert edge["server_us_per_request"]["median"] == 1000.0
    assert edge["client_us_per_request"] is None
    (ratio,) = ratios(rows)
    assert ratio["ratio"] == pytest.approx(1000 / 1500)
    doc = {"rate": {"summary": rows, "ratios": [ratio]}}
    targets = evaluate_targets(doc, _args())
    assert [t["result"] for t in targets] == [PASS, PASS]
    # At another concurrency the p99 target is not evaluated.
    targets = evaluate_targets(doc, _args("--connections", "8"))
    assert targets[1]["result"] == UNKNOWN


def _paced_doc(held: int, speed: float, p99: float) -> dict:
    seg = summarize_endpoint(_recording(10, p99).endpoint("playlist"), 10.0)
    cpu = {"cpu_s": 1.0, "cpu_cores_mean": 0.5, "cpu_cores_max": 0.7, "rss_mib_max": 70.0,
           "rss_mib_last": 70.0}  # fmt: skip
    return {
        "listeners": held, "ramp_s": 5.0, "duration_s": 10.0, "speed": speed, "buffer_s": 30.0,
        "heartbeat_s": 30.0, "events": True, "client_processes": 1, "connections": 100,
        "window_s": 5, "target_p99_ms": 100.0, "held_listeners": held, "held_all": True,
        "equivalent_listeners": round(held * speed), "late_segments": 0,
        "endpoints": {"segment": seg}, "windows": [], "server_cpu": cpu, "client_cpu": cpu,
        "generator_cpu_s": 3.0, "timeline": {"segment": time_line(_recording(10, p99).endpoint(
            "playlist")), "playlist": [], "key": []},
        "active": [{"second": s, "listeners": held} for s in range(10)],
    }  # fmt: skip


def test_paced_target_counts_sped_up_runs_as_equivalent_but_says_so():
    args = _args()
    real = evaluate_targets({"paced": _paced_doc(12_000, 1.0, 5.0)}, args)
    assert real[0]["result"] == PASS
    fast = evaluate_targets({"paced": _paced_doc(1000, 5.0, 5.0)}, args)
    assert fast[0]["result"] == f"{FAIL} (sped up)"
    assert "x5 = 5000 equivalent" in fast[0]["measured"]


def test_reports_are_written_as_json_markdown_and_png(tmp_path: Path):
    phases = [
        _phase("edge (2 workers)", "edge", "playlist", 1, 1000, 3.0),
        _phase("aiohttp HMAC", "hmac", "playlist", 1, 1500, 1.0),
    ]
    rows = summarize_phases(phases)
    doc: dict[str, Any] = {
        "benchmark": "listeners",
        "date": "2026-01-01T00:00:00+00:00",
        "command": "python -m benchmarks.listeners --mode both",
        "machine": machine_info(),
        "rate": {
            "how": "closed loop, 64 connections",
            "runs": 1,
            "phases": phases,
            "summary": rows,
            "ratios": ratios(rows),
            "notes": ["a note"],
        },
        "paced": _paced_doc(300, 10.0, 4.0),
    }
    doc["targets"] = evaluate_targets(doc, _args())
    written = write_reports(doc, tmp_path)
    assert [p.name for p in written] == ["listeners.json", "listeners.md", "listeners.png"]
    assert json.loads((tmp_path / "listeners.json").read_text())["rate"]["summary"] == rows
    markdown = (tmp_path / "listeners.md").read_text()
    assert "| edge (2 workers) | playlist | 1000 |" in markdown
    assert "playlist issuance vs aiohttp HMAC" in markdown
    assert "## Real-time paced listeners" in markdown and "Note: a note" in markdown
    assert "| target | measured | threshold | result |" in markdown
    assert (tmp_path / "listeners.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert render_markdown(doc) == markdown


def test_segment_pool_walks_listeners_in_step():
    sessions = [
        SessionUrls("m", "k", None, [f"{name}{i}" for i in range(count)])
        for name, count in (("a", 3), ("b", 2))
    ]
    assert in_step(sessions) == ["a0", "b0", "a1", "b1", "a2"]
