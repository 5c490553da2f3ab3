"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamer.settings import Settings, load_settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Embedded-default settings with all data under this test's own directory."""
    return load_settings(environ={}, data_dir=tmp_path / "data")
