"""Where vegeta is kept, and what is said when it cannot be built."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from benchmarks import vegeta_install
from benchmarks.vegeta_install import VegetaUnavailable, ensure_vegeta, vegeta_path


def test_the_binary_is_pinned_under_the_cache(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STREAMER_CACHE", str(tmp_path))
    assert vegeta_path() == tmp_path / "bin" / "vegeta-v12.12.0"


def test_an_installed_binary_is_used_without_go(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STREAMER_CACHE", str(tmp_path))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "vegeta-v12.12.0").write_bytes(b"")
    assert ensure_vegeta() == tmp_path / "bin" / "vegeta-v12.12.0"


def test_without_go_the_error_says_how_to_get_it(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STREAMER_CACHE", str(tmp_path))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(vegeta_install, "GO_LOCATIONS", ())
    with pytest.raises(VegetaUnavailable, match="no `go` on PATH") as caught:
        ensure_vegeta()
    assert str(tmp_path / "bin" / "vegeta-v12.12.0") in str(caught.value)
    assert "go.dev/dl" in str(caught.value)
