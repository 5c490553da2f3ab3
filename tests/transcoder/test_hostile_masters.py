"""Masters that must be refused with a specific reason, publishing nothing; and odd ones that
must be accepted and come out right."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from drm import KeyRing
from streamer.catalog import current_record_key
from streamer.objects.local import LocalObjectStore
from streamer.settings import Settings
from tests.masters import make_master
from transcoder.errors import MasterRejected
from transcoder.pipeline import ingest_master

pytestmark = pytest.mark.slow


def _truncated_flac(path: Path) -> Path:
    whole = make_master(path.with_name("whole.flac"), seconds=10.0)
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 5])
    return path


def _wav_claiming_more_than_it_has(path: Path) -> Path:
    whole = make_master(path.with_name("whole.wav"), seconds=10.0)
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # header still declares all ten seconds
    return path


def _frame_aligned_short_wav(path: Path) -> Path:
    whole = make_master(path.with_name("whole.wav"), seconds=10.0)
    data = whole.read_bytes()
    cut = 44 + ((len(data) // 3 - 44) // 4) * 4  # whole sample frames: decodes without an error
    path.write_bytes(data[:cut])
    return path


def _text_named_wav(path: Path) -> Path:
    path.write_text("These are liner notes, not audio.\n" * 40)
    return path


def _zero_bytes(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def _video_without_audio(path: Path) -> Path:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=black:s=64x64:d=2",
         "-c:v", "mpeg4", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return path


HOSTILE: list[tuple[str, str, Callable[[Path], Path], str]] = [
    ("truncated FLAC", "cut.flac", _truncated_flac, "corrupt_data|truncated"),
    ("WAV header claims more data", "liar.wav", _wav_claiming_more_than_it_has, "truncated"),
    ("WAV cut on a frame boundary", "cut.wav", _frame_aligned_short_wav, "truncated"),
    ("text named .wav", "notes.wav", _text_named_wav, "not_audio"),
    ("zero-byte file", "empty.wav", _zero_bytes, "empty_file"),
    ("0.2 s clip", "blip.wav", lambda p: make_master(p, seconds=0.2), "too_short"),
    ("silent track", "silence.flac", lambda p: make_master(p, seconds=5.0, silent=True), "silent"),
    ("video with no audio", "video.mp4", _video_without_audio, "no_audio_stream"),
]


@pytest.mark.parametrize(
    ("label", "filename", "build", "codes"), HOSTILE, ids=[h[0] for h in HOSTILE]
)
def test_hostile_master_is_refused_and_publishes_nothing(
    label: str,
    filename: str,
    build: Callable[[Path], Path],
    codes: str,
    tmp_path: Path,
    settings: Settings,
    store: LocalObjectStore,
    ring: KeyRing,
) -> None:
    master = build(tmp_path / filename)
    with pytest.raises(MasterRejected) as caught:
        ingest_master(
            master, track_id="t1", metadata={}, settings=settings, store=store, ring=ring,
            work_dir=tmp_path / "work",
        )  # fmt: skip
    assert caught.value.code in codes.split("|"), str(caught.value)
    assert filename in str(caught.value)  # the message says which file
    assert list(store.list("")) == []  # nothing at all was published


def test_silent_track_is_published_and_flagged_when_allowed(
    tmp_path: Path, settings: Settings, store: LocalObjectStore, ring: KeyRing
) -> None:
    import dataclasses

    lenient = dataclasses.replace(settings, reject_silent=False)
    master = make_master(tmp_path / "silence.flac", seconds=3.0, silent=True)
    result = ingest_master(
        master, track_id="quiet", metadata={}, settings=lenient, store=store, ring=ring,
        work_dir=tmp_path / "work",
    )  # fmt: skip
    assert result.record.silent
    assert result.record.loudness.playback_gain_db == 0.0


ODD: list[tuple[str, str, dict, int, int]] = [
    # label, filename, make_master kwargs, expected output channels, lossless sample rate
    ("5.1 WAV is folded to stereo", "surround.wav", {"channels": 6, "rate": 48_000}, 2, 48_000),
    ("mono stays mono", "mono.aiff", {"channels": 1}, 1, 44_100),
    (
        "96 kHz / 24-bit FLAC",
        "hires.flac",
        {"rate": 96_000, "codec_args": ("-sample_fmt", "s32")},
        2,
        96_000,
    ),
    ("8 kHz WAV", "phone.wav", {"rate": 8_000, "channels": 1}, 1, 8_000),
    ("MP3", "song.mp3", {"codec_args": ("-b:a", "192k")}, 2, 44_100),
    ("M4A / ALAC", "song.m4a", {"codec_args": ("-c:a", "alac")}, 2, 44_100),
    ("Ogg Vorbis", "song.ogg", {"codec_args": ("-c:a", "libvorbis")}, 2, 44_100),
]


@pytest.mark.parametrize(
    ("label", "filename", "kwargs", "channels", "rate"), ODD, ids=[o[0] for o in ODD]
)
def test_unusual_masters_are_accepted_and_correct(
    label: str,
    filename: str,
    kwargs: dict,
    channels: int,
    rate: int,
    tmp_path: Path,
    settings: Settings,
    store: LocalObjectStore,
    ring: KeyRing,
) -> None:
    master = make_master(tmp_path / filename, seconds=8.0, **kwargs)
    result = ingest_master(
        master, track_id="odd", metadata={}, settings=settings, store=store, ring=ring,
        work_dir=tmp_path / "work",
    )  # fmt: skip
    record = result.record
    assert record.duration_s == pytest.approx(8.0, abs=0.06)
    assert {r.channels for r in record.renditions} == {channels}
    assert record.rendition("flac").sample_rate == rate
    assert record.rendition("opus_96").sample_rate == 48_000
    assert record.rendition("aac_160").sample_rate in (44_100, 48_000)
    assert store.stat(current_record_key("odd")).size > 0
