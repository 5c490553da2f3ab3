"""The embedded store's row benchmark: it writes every row it times, both ways."""

from __future__ import annotations

import pytest

from benchmarks.store_rows import _second_half_rows, main, measure, samples


def test_samples_take_turns_between_sessions_with_unique_ids() -> None:
    items = samples(7, 3, 1_795_000_000_000)
    first, second, third, fourth = (s.session_id for s in items[:4])
    assert len({first, second, third}) == 3 and fourth == first
    assert all(len(s.session_id) == 16 for s in items)
    assert len({s.sample_id for s in items}) == 7
    assert all(s.keys["sid"] == s.session_id for s in items)


def test_second_half_counts_the_rows_of_the_later_batches() -> None:
    # Batches of 500, 500, 500, 500, 500 and 100: the last three are timed.
    assert _second_half_rows(2600, 500) == 1100
    assert _second_half_rows(1000, 500) == 500


def test_measure_stores_and_appends_every_row() -> None:
    cost = measure(rows=3000, sessions=50, batch=500)
    assert cost.rows_stored == 3000
    assert cost.rows_appended == 3000
    assert cost.store_us > 0 and cost.append_only_us > 0


def test_main_reports_the_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--rows", "1200", "--sessions", "40", "--batch", "300", "--runs", "2"]) == 0
    out = capsys.readouterr().out
    assert "| SQLiteSessionStore.write_telemetry |" in out
    assert "ratio store / append-only:" in out
