"""Pure ingest policies: encode plan, loudness, packaging tidy-up, PCM headers, probe checks."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from transcoder.encode_plan import (
    SourceFormat,
    balance,
    output_sample_rate,
    plan_encode,
    rendition_cost,
)
from transcoder.errors import MasterRejected
from transcoder.gapless import EditListNotFound, edit_media_time, set_edit_media_time
from transcoder.ladder import DEFAULT_LADDER, RenditionSpec
from transcoder.loudness import (
    LoudnessUnavailable,
    is_silent,
    measure,
    parse_ebur128_summary,
    playback_gain_db,
)
from transcoder.packaging import tidy, top_level_boxes
from transcoder.pcm_headers import declared_pcm_data
from transcoder.probe import ProbeResult, check_probe, parse_probe

# As ffmpeg 5.1 prints it with -loglevel level+info: only the first line carries the prefix.
EBUR128_SUMMARY = """
[Parsed_ebur128_4 @ 0x55] [info] Summary:

  Integrated loudness:
    I:         -19.2 LUFS
    Threshold: -29.2 LUFS

  Loudness range:
    LRA:         6.1 LU
    Threshold: -39.2 LUFS
    LRA low:   -22.9 LUFS
    LRA high:  -16.8 LUFS

  True peak:
    Peak:       -0.4 dBFS
"""


def test_balance_spreads_the_ladder_evenly_and_meters_the_lighter_process() -> None:
    bins = balance(DEFAULT_LADDER, 2)
    loads = [sum(rendition_cost(s) for s in b) for b, _ in bins]
    assert sorted(s.name for b, _ in bins for s in b) == sorted(s.name for s in DEFAULT_LADDER)
    assert max(loads) / min(loads) < 1.25
    metered = [i for i, (_, meter) in enumerate(bins) if meter]
    assert metered == [loads.index(min(loads))]


def test_balance_never_makes_more_processes_than_renditions() -> None:
    one = (RenditionSpec("aac_96", "aac", 96, "free"),)
    assert len(balance(one, 4)) == 1


@pytest.mark.parametrize(
    ("codec", "source_rate", "expected"),
    [
        ("opus", 44_100, 48_000),
        ("opus", 8_000, 48_000),
        ("aac", 44_100, 44_100),
        ("aac", 48_000, 48_000),
        ("aac", 96_000, 48_000),
        ("aac", 88_200, 44_100),
        ("aac", 8_000, 48_000),
        ("aac", 22_050, 44_100),
        ("flac", 96_000, 96_000),
        ("flac", 8_000, 8_000),
    ],
)
def test_output_sample_rates(codec: str, source_rate: int, expected: int) -> None:
    spec = {"opus": DEFAULT_LADDER[3], "aac": DEFAULT_LADDER[0], "flac": DEFAULT_LADDER[6]}[codec]
    assert output_sample_rate(spec, SourceFormat(source_rate, 2, 16)) == expected


def test_plan_keeps_mono_mono_and_folds_surround_to_stereo(tmp_path: Path) -> None:
    mono = plan_encode(
        Path("m.wav"), SourceFormat(44_100, 1, 16), DEFAULT_LADDER, tmp_path, segment_s=6
    )
    surround = plan_encode(
        Path("m.wav"), SourceFormat(48_000, 6, 24), DEFAULT_LADDER, tmp_path, segment_s=6
    )
    assert all("channel_layouts=mono" in " ".join(p.args) for p in mono)
    assert all("channel_layouts=stereo" in " ".join(p.args) for p in surround)
    flac_args = next(p.args for p in surround if any(s.codec == "flac" for s in p.renditions))
    assert "s32" in flac_args  # 24-bit masters stay 24-bit in the lossless rendition


def test_plan_writes_each_rendition_to_its_own_directory(tmp_path: Path) -> None:
    plan = plan_encode(
        Path("m.flac"), SourceFormat(44_100, 2, 16), DEFAULT_LADDER, tmp_path, segment_s=6
    )
    outputs = [a for p in plan for a in p.args if a.endswith("index.m3u8")]
    assert sorted(Path(o).parent.name for o in outputs) == sorted(s.name for s in DEFAULT_LADDER)
    assert sum(p.measures_loudness for p in plan) == 1


def test_ebur128_summary_is_parsed() -> None:
    assert parse_ebur128_summary(EBUR128_SUMMARY) == (-19.2, 6.1, -0.4)
    with pytest.raises(LoudnessUnavailable):
        parse_ebur128_summary("[info] nothing here")


@pytest.mark.parametrize(
    ("lufs", "peak", "gain"),
    [
        (-19.2, -8.7, 5.2),  # quiet master, lots of headroom: full gain to -14
        (-19.2, -3.0, 2.0),  # quiet but peaky: the -1 dBTP ceiling limits the gain
        (-8.0, -0.1, -6.0),  # loud master is turned down to -14
        (-14.0, -1.0, 0.0),
        (-70.0, -200.0, 0.0),  # silence gets no gain at all
    ],
)
def test_playback_gain_reaches_target_within_true_peak_ceiling(
    lufs: float, peak: float, gain: float
) -> None:
    assert playback_gain_db(lufs, peak) == pytest.approx(gain, abs=0.01)
    if lufs > -70:
        assert peak + playback_gain_db(lufs, peak) <= -1.0 + 1e-9


def test_measure_reports_silence_as_the_gate_floor() -> None:
    log = EBUR128_SUMMARY.replace("-19.2 LUFS", "-70.0 LUFS").replace("-0.4 dBFS", "-inf dBFS")
    loudness = measure(log)
    assert loudness.integrated_lufs == -70.0
    assert is_silent(loudness.integrated_lufs, loudness.true_peak_dbtp)
    assert not is_silent(-19.2, -0.4)


def test_tidy_drops_empty_segments_and_folds_a_short_tail() -> None:
    a, b, c, d = (Path(n) for n in "abcd")
    tidied = tidy([(a, 6.0, True), (b, 6.0, True), (c, 0.02, True), (d, 0.1, False)])
    assert [s.parts for s in tidied] == [(a,), (b, c)]
    assert tidied[-1].duration_s == pytest.approx(6.02)


def test_tidy_keeps_a_long_tail_and_a_lone_short_segment() -> None:
    a, b = Path("a"), Path("b")
    assert [s.parts for s in tidy([(a, 6.0, True), (b, 2.5, True)])] == [(a,), (b,)]
    assert [s.parts for s in tidy([(a, 0.5, True)])] == [(a,)]


def test_top_level_boxes() -> None:
    styp = struct.pack(">I4s", 24, b"styp") + b"msdh" + b"\0" * 4 + b"msdhmsix"
    moof = struct.pack(">I4s", 16, b"moof") + b"\0" * 8
    assert top_level_boxes(styp) == [b"styp"]
    assert top_level_boxes(styp + moof) == [b"styp", b"moof"]


def _wav_header(data_bytes: int) -> bytes:
    fmt = struct.pack("<HHIIHH", 1, 2, 44_100, 176_400, 4, 16)
    return (
        b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"LIST" + struct.pack("<I", 3) + b"abc\0"  # odd chunk: padded to even
        + b"data" + struct.pack("<I", data_bytes)
    )  # fmt: skip


def test_wav_header_declared_data_is_found_past_odd_chunks() -> None:
    header = _wav_header(1000)
    declared = declared_pcm_data(header)
    assert declared is not None
    assert declared.declared_bytes == 1000
    assert declared.data_offset == len(header)


def test_aiff_header_declared_data_excludes_ssnd_offset_fields() -> None:
    comm = b"COMM" + struct.pack(">I", 18) + b"\0" * 18
    ssnd = b"SSND" + struct.pack(">I", 8 + 400) + b"\0" * 8
    header = b"FORM" + struct.pack(">I", 4 + len(comm) + len(ssnd) + 400) + b"AIFF" + comm + ssnd
    declared = declared_pcm_data(header)
    assert declared is not None
    assert (declared.data_offset, declared.declared_bytes) == (len(header), 400)


def test_non_pcm_and_streamed_wav_headers_are_not_checked() -> None:
    assert declared_pcm_data(b"fLaC" + b"\0" * 40) is None
    assert declared_pcm_data(_wav_header(0)) is None


def _probe(**changes: object) -> ProbeResult:
    base = dict(
        format_name="flac", codec_name="flac", sample_rate=44_100, channels=2,
        bits_per_sample=16, duration_s=200.0, size_bytes=1000,
    )  # fmt: skip
    return ProbeResult(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"duration_s": 0.2}, "too_short"),
        ({"duration_s": 5 * 3600.0}, "too_long"),
        ({"sample_rate": 4_000}, "unsupported_sample_rate"),
        ({"sample_rate": 384_000}, "unsupported_sample_rate"),
        ({"channels": 12}, "unsupported_channels"),
        ({"format_name": "tty"}, "unsupported_format"),
    ],
)
def test_probe_policy_rejects_with_specific_codes(changes: dict, code: str) -> None:
    with pytest.raises(MasterRejected) as caught:
        check_probe(_probe(**changes), "x.flac", max_duration_s=4 * 3600.0)
    assert caught.value.code == code
    assert "x.flac" in str(caught.value)


def test_probe_policy_accepts_the_formats_ingest_teams_send() -> None:
    for name in ("wav", "flac", "aiff", "mp3", "mov,mp4,m4a,3gp,3g2,mj2", "ogg"):
        check_probe(_probe(format_name=name), "x", max_duration_s=4 * 3600.0)


def test_parse_probe_without_audio_stream() -> None:
    info = {
        "format": {"format_name": "mov,mp4,m4a,3gp,3g2,mj2"},
        "streams": [{"codec_type": "video"}],
    }
    with pytest.raises(MasterRejected) as caught:
        parse_probe(info, 10, "clip.mp4")
    assert caught.value.code == "no_audio_stream"


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


@pytest.mark.parametrize("version", [0, 1])
def test_edit_list_media_time_is_patched_in_place(version: int) -> None:
    if version == 0:
        entry = struct.pack(">Ii", 0, 0) + b"\0\1\0\0"
    else:
        entry = struct.pack(">Qq", 0, 0) + b"\0\1\0\0"
    elst = _box(b"elst", bytes([version, 0, 0, 0]) + struct.pack(">I", 1) + entry)
    init = _box(b"ftyp", b"iso6") + _box(
        b"moov",
        _box(b"mvhd", b"\0" * 20) + _box(b"trak", _box(b"tkhd", b"\0" * 8) + _box(b"edts", elst)),
    )
    patched = set_edit_media_time(init, 1024)
    assert len(patched) == len(init) and edit_media_time(patched) == 1024
    assert edit_media_time(init) == 0


def test_edit_list_missing_is_reported() -> None:
    with pytest.raises(EditListNotFound):
        set_edit_media_time(_box(b"ftyp", b"iso6") + _box(b"moov", b""), 1024)
