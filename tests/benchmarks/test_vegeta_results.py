"""Reading vegeta's results into the paced report: classes, errors, windows, held listeners."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from benchmarks.vegeta_results import (
    Hit,
    PacedTally,
    endpoint_of,
    error_kind,
    held_listeners,
    parse_hit,
)

START = 1_800_000_000.0
TOKEN_PATH = "http://127.0.0.1:8080/v1/s/tok"


def _line(**fields: object) -> str:
    doc = {
        "attack": "paced", "seq": 0, "code": 200, "timestamp": "2027-01-15T08:00:00.25Z",
        "latency": 1_234_567, "bytes_out": 0, "bytes_in": 0, "error": "", "body": None,
        "method": "GET", "url": f"{TOKEN_PATH}/aac_160/seg_00003.m4s?CMCD=x", "headers": None,
    }  # fmt: skip
    doc.update(fields)
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("method", "url", "kind"),
    [
        ("GET", f"{TOKEN_PATH}/aac_160/seg_00003.m4s?CMCD=ot%3Da", "segment"),
        ("GET", f"{TOKEN_PATH}/aac_160/init.mp4?CMCD=ot%3Di", "init"),
        ("GET", f"{TOKEN_PATH}/aac_160/playlist.m3u8", "playlist"),
        ("GET", f"{TOKEN_PATH}/keys/v1-free-0?CMCD=ot%3Dk", "key"),
        ("POST", "http://127.0.0.1:8080/v1/sessions/abc/events", "events"),
        ("GET", "http://127.0.0.1:8080/healthz", "other"),
    ],
)
def test_endpoint_of(method: str, url: str, kind: str) -> None:
    assert endpoint_of(method, url) == kind


def test_error_kinds_name_the_status_or_the_transport_error_without_addresses() -> None:
    assert error_kind(200, "") is None and error_kind(206, "") is None
    assert error_kind(404, "404 Not Found") == "status 404"
    refused = (
        'Get "http://127.0.0.1:9/x.m4s": dial tcp 0.0.0.0:0->127.0.0.1:9: connect: '
        "connection refused"
    )
    assert error_kind(0, refused) == "dial tcp ADDR->ADDR: connect: connection refused"
    timeout = (
        'Get "http://127.0.0.1:8080/v1/s/t/aac_160/seg_00001.m4s?CMCD=x": context deadline '
        "exceeded (Client.Timeout exceeded while awaiting headers)"
    )
    assert (error_kind(0, timeout) or "").startswith("context deadline exceeded")


def test_parse_hit_reads_a_vegeta_json_line() -> None:
    hit = parse_hit(_line())
    at = datetime(2027, 1, 15, 8, tzinfo=UTC).timestamp() + 0.25
    assert hit == Hit("segment", at, 1234, None, "paced", 0)


def test_parse_hit_keeps_the_nanosecond_timestamp_to_the_microsecond() -> None:
    hit = parse_hit(_line(timestamp="2027-01-15T09:00:00.123456789+01:00"))
    at = datetime(2027, 1, 15, 8, tzinfo=UTC).timestamp() + 0.123456
    assert hit is not None and hit.started_s == pytest.approx(at, abs=1e-6)


def test_parse_hit_skips_the_end_of_targets_marker_and_keeps_errors() -> None:
    assert parse_hit(_line(code=0, url="", method="", error="no targets to attack")) is None
    failed = parse_hit(_line(code=403, error="403 Forbidden"))
    assert failed is not None and failed.error == "status 403"


def _hit(kind: str, at_s: float, ms: float, error: str | None = None) -> Hit:
    return Hit(kind, START + at_s, round(ms * 1000), error)


def test_endpoint_summary_counts_rates_errors_and_percentiles() -> None:
    tally = PacedTally(START, phase_s=10.0)
    tally.add_all([_hit("segment", 0.1 * i, 1.0 + i) for i in range(100)])
    tally.add(_hit("key", 3.0, 2.0, "status 429"))
    summary = tally.endpoint_summary()
    assert list(summary) == ["segment", "key"]
    segment = summary["segment"]
    assert segment["requests"] == 100 and segment["requests_per_s"] == 10.0
    assert segment["errors"] == 0
    assert segment["latency_ms"]["p50"] == pytest.approx(50.0, rel=0.02)
    assert segment["latency_ms"]["max"] == pytest.approx(100.0)
    assert summary["key"]["errors_by_kind"] == {"status 429": 1}


def test_windows_hold_segment_p99_errors_and_listeners_started() -> None:
    tally = PacedTally(START, phase_s=15.0)
    tally.add_all(
        [
            _hit("playlist", 0.5, 1.0),
            _hit("segment", 0.6, 2.0),
            _hit("playlist", 5.5, 1.0),
            _hit("segment", 5.6, 150.0),  # over the target
            _hit("segment", 11.0, 2.0),
            _hit("events", 12.0, 1.0, "status 500"),
            _hit("segment", 15.2, 3.0),  # just past the phase: counted in the last window
        ]
    )
    rows = tally.window_rows()
    assert [w["from_s"] for w in rows] == [0, 5, 10]
    assert [w["listeners"] for w in rows] == [1, 2, 2]
    assert [w["segments"] for w in rows] == [1, 1, 2]
    assert rows[1]["segment_p99_ms"] == pytest.approx(150.0, rel=0.01)
    assert [w["errors"] for w in rows] == [0, 0, 1]
    assert [w["ok"] for w in rows] == [True, False, False]


def test_a_window_without_segments_fails() -> None:
    tally = PacedTally(START, phase_s=10.0)
    tally.add_all([_hit("playlist", 0.5, 1.0), _hit("segment", 1.0, 1.0)])
    assert [w["ok"] for w in tally.window_rows()] == [True, False]


def test_schedule_lag_is_how_late_requests_were_sent_behind_an_even_pace() -> None:
    tally = PacedTally(START, phase_s=10.0, intervals_s={"paced": 0.01})
    # Due at 0, 10, 20, ... ms; the fourth is sent 50 ms late; an unknown attack is ignored.
    sent = [0.0, 0.01, 0.02, 0.08, 0.04]
    tally.add_all(
        Hit("segment", START + 1.0 + at, 1000, None, "paced", seq) for seq, at in enumerate(sent)
    )
    tally.add(Hit("events", START, 1000, None, "events", 7))
    lag = tally.schedule_lag()
    assert list(lag) == ["paced"]
    assert lag["paced"]["max_ms"] == pytest.approx(50.0, rel=0.01)


def _windows(oks: list[bool], started: list[int]) -> list[dict[str, object]]:
    pairs = enumerate(zip(oks, started, strict=True))
    return [{"from_s": 5 * i, "ok": ok, "listeners": n} for i, (ok, n) in pairs]


def test_held_listeners() -> None:
    assert held_listeners(_windows([True, True], [60, 100]), 100) == {
        "held": 100, "held_all": True, "first_failing_window_s": None,
    }  # fmt: skip
    # Failed while listeners were still starting: those started before it were held.
    during = held_listeners(_windows([True, False, True], [60, 100, 100]), 100)
    assert during["held"] == 60 and not during["held_all"]
    assert during["first_failing_window_s"] == 5
    # Failed once all had started: the run held none of its count.
    after = held_listeners(_windows([True, True, False], [60, 100, 100]), 100)
    assert after["held"] == 0 and after["listeners_started_before_failure"] == 100
    assert held_listeners(_windows([False, True], [60, 100]), 100)["held"] == 0
    assert held_listeners([], 100)["held_all"] is False
