"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from streamer.settings import Settings, load_settings

# Property tests and fuzzers draw the same inputs on every run, so a run's outcome depends on
# the code alone and a red CI run can be replayed. A fuzzing campaign draws fresh inputs:
# `pytest tests/fuzz --hypothesis-profile explore` (docs/reliability.md, "Fuzzing").
hypothesis_settings.register_profile("repeatable", derandomize=True)
hypothesis_settings.register_profile("explore", derandomize=False)
hypothesis_settings.load_profile("repeatable")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded-default settings with all data under this test's own directory."""
    return load_settings(environ={}, data_dir=tmp_path / "data")
