"""The listener benchmark end to end against a real `streamer serve`, with tiny numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.listeners import main

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ENDPOINTS = ("playlist", "key", "segment")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A short master (two segments) keeps the ingest to a couple of seconds; the first
    # benchmark run ingests it, the second reuses it.
    return tmp_path_factory.mktemp("bench") / "data"


def test_open_loop_on_each_endpoint_has_throughput_and_no_errors(data_dir: Path, tmp_path: Path):
    status = main(
        [
            "--mode", "rate", "--data-dir", str(data_dir), "--track-seconds", "12",
            "--workers", "1", "--client-procs", "1", "--rate", "40", "--connections", "4",
            "--seconds", "2", "--warmup", "0.5", "--sessions", "8", "--key-sessions", "8",
            "--segment-sessions", "2", "--baselines", "", "--out", str(tmp_path),
        ]
    )  # fmt: skip
    assert status == 0
    doc = json.loads((tmp_path / "listeners.json").read_text())
    phases = {p["endpoint"]: p for p in doc["rate"]["phases"]}
    assert set(phases) == set(ENDPOINTS)
    for endpoint in ENDPOINTS:
        result = phases[endpoint]["result"]
        assert result["requests_per_s"] > 0, endpoint
        assert result["ok"] > 0, endpoint
        assert result["errors"] == 0, (endpoint, result["errors_by_kind"])
        assert result["latency_ms"]["p99"] > 0, endpoint
        assert phases[endpoint]["server_cpu"]["rss_mib_max"] > 0, endpoint
    assert (tmp_path / "listeners.md").exists()


def test_paced_listeners_play_through_without_errors(data_dir: Path, tmp_path: Path):
    status = main(
        [
            "--mode", "paced", "--data-dir", str(data_dir), "--track-seconds", "12",
            "--workers", "1", "--client-procs", "1", "--listeners", "10", "--ramp", "1",
            "--duration", "4", "--speed", "10", "--heartbeat-s", "6", "--out", str(tmp_path),
        ]
    )  # fmt: skip
    assert status == 0
    doc = json.loads((tmp_path / "listeners.json").read_text())
    paced = doc["paced"]
    # The edge kept every CMCD sample, delivery and event of the run.
    assert doc["edge"]["telemetry"]["written"] > 0
    assert doc["edge"]["telemetry"]["dropped"] == 0
    assert "dropped" in (tmp_path / "listeners.md").read_text()
    for name in ("session", "multivariant", "playlist", "key", "init", "segment", "events"):
        assert paced["endpoints"][name]["ok"] > 0, name
        assert paced["endpoints"][name]["errors"] == 0, (name, paced["endpoints"][name])
    assert paced["held_all"] and paced["held_listeners"] == 10
