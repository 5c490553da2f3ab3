"""The vegeta paced run: its process classes, and end to end against `streamer serve`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.tier_usage import process_class
from benchmarks.vegeta_install import VegetaUnavailable, ensure_vegeta
from benchmarks.vegeta_paced import main


@pytest.mark.parametrize(
    ("cmdline", "comm", "name"),
    [
        ("nginx: worker process", "nginx", "nginx"),
        (
            "python -m streamer_app.cli --data-dir d logship --log a.log --state s",
            "python",
            "logship",
        ),
        (
            "python -m streamer_app.cli --data-dir d serve --segments python --port 1",
            "python",
            "edge",
        ),
        ("python -m streamer_app.cli --data-dir d serve --host 127.0.0.1", "python", "supervisor"),
        (
            "python -m streamer_app.cli --data-dir d serve --port 1 --segments auto",
            "python",
            "supervisor",
        ),
    ],
)
def test_process_class(cmdline: str, comm: str, name: str) -> None:
    assert process_class(cmdline, comm) == name


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_300_listeners_for_15_seconds_hold_without_errors(tmp_path: Path) -> None:
    try:
        ensure_vegeta()
    except VegetaUnavailable as exc:  # Go and its module proxy are part of the machine
        pytest.fail(f"the paced smoke test needs vegeta: {exc}", pytrace=False)
    status = main(
        [
            "--listeners", "300", "--duration", "15", "--track-seconds", "30",
            "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path),
        ]
    )  # fmt: skip
    assert status == 0
    doc = json.loads((tmp_path / "vegeta_paced.json").read_text())
    endpoints = doc["endpoints"]
    assert set(endpoints) == {"segment", "key", "playlist", "init", "events"}
    assert endpoints["segment"]["requests"] == 300 * doc["steps"]
    assert endpoints["playlist"]["requests"] == endpoints["init"]["requests"] == 300
    assert endpoints["events"]["requests"] == doc["heartbeats"] > 0
    for name, endpoint in endpoints.items():
        assert endpoint["errors"] == 0, (name, endpoint["errors_by_kind"])
    windows = doc["windows"]
    assert len(windows) >= 2 and all(w["ok"] for w in windows), windows
    assert windows[-1]["listeners"] == 300
    assert doc["held_all"] and doc["held"] == 300
    assert doc["server_cpu_cores"]["nginx"] > 0 and doc["vegeta_cpu_cores"]["paced"] > 0
    assert doc["shipper"]["caught_up_after_s"] is not None
    assert doc["edge_telemetry_dropped"] == 0
