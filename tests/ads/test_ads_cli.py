"""`streamer ads`: campaigns in, reports out, bad files refused with the field named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamer_app.cli import main


def test_a_campaign_is_stored_listed_and_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    spec = tmp_path / "c1.json"
    spec.write_text(
        json.dumps({"campaign_id": "c1", "ad_id": "spot-1", "daily_goal": 10, "frequency_cap": 2})
    )
    assert main([*data, "ads", "campaign", str(spec)]) == 0
    assert main([*data, "ads", "campaigns"]) == 0
    out = capsys.readouterr().out
    listed = json.loads(out[out.index("[") :])
    assert [c["campaign_id"] for c in listed] == ["c1"] and listed[0]["tiers"] == ["free"]
    assert main([*data, "ads", "report", "--campaign", "c1", "--day", "2026-11-30"]) == 0
    assert "campaign c1 on 2026-11-30: 0 breaks decided" in capsys.readouterr().out


def test_a_bad_campaign_file_is_refused_and_nothing_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    spec = tmp_path / "bad.json"
    spec.write_text(
        json.dumps({"campaign_id": "c1", "ad_id": "a", "daily_goal": 10, "frequency_cap": 0})
    )
    assert main([*data, "ads", "campaign", str(spec)]) == 2
    assert "frequency_cap must be an integer from 1" in capsys.readouterr().err
    assert main([*data, "ads", "campaigns"]) == 0
    assert json.loads(capsys.readouterr().out) == []
