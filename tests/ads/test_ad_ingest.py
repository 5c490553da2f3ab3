"""`streamer ingest --kind ad`: the real ffmpeg, measured after encode."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import pytest

from drm import KeyRing, new_kek
from streamer.ads.creative import current_ad_key, decode_ad_creative
from streamer.jobs.sqlite import SQLiteJobStore
from streamer.objects.local import LocalObjectStore
from streamer.settings import load_settings
from tests.masters import make_master
from transcoder.ad_ingest import AD_LADDER, AD_SEGMENT_S
from transcoder.ingest_cli import ingest_files

pytestmark = pytest.mark.slow

_INTEGRATED = re.compile(r"Integrated loudness:\s+I:\s+(-?[\d.]+) LUFS")


def _ring() -> KeyRing:
    kek = new_kek()
    return KeyRing(kek.kek_id, (kek,))


def _scaled_master(tmp: Path, name: str, gain_db: float, seconds: float = 8.0) -> Path:
    raw = make_master(tmp / f"raw-{name}.wav", seconds=seconds)
    out = tmp / f"{name}.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(raw), "-af", f"volume={gain_db}dB", str(out)],
        check=True,
        timeout=60,
    )
    return out


def _measured_lufs(data: bytes, tmp: Path) -> float:
    path = tmp / "decoded.mp4"
    path.write_bytes(data)
    result = subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-nostats",
            "-i",
            str(path),
            "-af",
            "ebur128",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return float(_INTEGRATED.findall(result.stderr)[-1])


@pytest.mark.parametrize("gain_db", [-14.0, +6.0], ids=["quiet", "loud"])
def test_an_ad_is_normalised_to_the_programme_loudness_in_short_clear_segments(
    tmp_path: Path, gain_db: float
) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path / "data")
    store = LocalObjectStore(tmp_path / "objects")
    jobs = SQLiteJobStore(tmp_path / "jobs.sqlite3")
    master = _scaled_master(tmp_path, "spot", gain_db)
    out = io.StringIO()
    status = ingest_files(
        [master],
        settings=settings,
        store=store,
        jobs=jobs,
        ring=_ring(),
        track_id="spot-1",
        metadata={"advertiser": "acme"},
        kind="ad",
        out=out,
        err=io.StringIO(),
    )
    assert status == 0, out.getvalue()
    creative = decode_ad_creative(store.get(current_ad_key("spot-1")))
    assert abs(creative.loudness.integrated_lufs - -14.0) <= 1.0
    assert {r.name for r in creative.renditions} == {s.name for s in AD_LADDER}
    assert all(r.tier == "free" for r in creative.renditions)
    # Not a track: nothing under tracks/, so no catalogue, session or play can find it.
    assert list(store.list("tracks/")) == []
    for rendition in creative.renditions:
        assert rendition.target_duration_s <= AD_SEGMENT_S + 1
        assert all(s.key_id == "" for s in rendition.segments)  # clear
        prefix = f"ads/spot-1/{creative.version}"
        body = store.get(f"{prefix}/{rendition.init_key}") + b"".join(
            store.get(f"{prefix}/{s.key}") for s in rendition.segments
        )
        # Measured after encode, on what a player decodes: -14 LUFS within 1 LU.
        lufs = _measured_lufs(body, tmp_path)
        assert abs(lufs - -14.0) <= 1.0, f"{rendition.name} measures {lufs} LUFS"
