"""Every published rendition, decrypted with its stored keys and decoded, matches the master."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import m3u8
import numpy as np
import pytest

from manifests import lint_media, parse_media
from streamer.catalog import current_record_key, decode_track_record, version_prefix
from tests.audio_compare import COMPARE_RATE, MIN_CORRELATION, align
from tests.masters import decode_pcm
from tests.transcoder.conftest import Published, clear_segments
from transcoder.gapless import edit_media_time
from transcoder.ladder import DEFAULT_LADDER

pytestmark = pytest.mark.slow

# One codec frame, in seconds: AAC 1024 samples, Opus 20 ms, FLAC 4608 samples at 44.1 kHz.
FRAME_S = {"aac": 1024 / 44_100, "opus": 0.020, "flac": 4608 / 44_100}


def _loudness(path: Path) -> float:
    log = subprocess.run(
        ["ffmpeg", "-nostats", "-i", str(path), "-af", "ebur128=framelog=verbose",
         "-f", "null", "-"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stderr  # fmt: skip
    line = [ln for ln in log.splitlines() if ln.strip().startswith("I:")][-1]
    return float(line.split()[1])


@pytest.mark.parametrize("name", [spec.name for spec in DEFAULT_LADDER])
def test_rendition_decodes_to_the_master(published: Published, name: str, tmp_path: Path) -> None:
    record = published.result.record
    rendition = record.rendition(name)
    clear = tmp_path / f"{name}.mp4"
    clear.write_bytes(clear_segments(published.store, published.ring, record, name))

    reference = np.frombuffer(decode_pcm(published.master, COMPARE_RATE), dtype=np.float32)
    decoded = np.frombuffer(decode_pcm(clear, COMPARE_RATE), dtype=np.float32)
    lag = align(reference, decoded, max_lag=COMPARE_RATE // 10)
    usable = min(len(reference), len(decoded) - lag)
    a, b = reference[:usable], decoded[lag : lag + usable]
    correlation = float(np.corrcoef(a, b)[0, 1])
    assert correlation >= MIN_CORRELATION[name], f"{name}: correlation {correlation:.4f}"

    # Duration: what decodes past the encoder delay matches the master within one frame.
    frame = FRAME_S[rendition.codec]
    content_s = (len(decoded) - lag) / COMPARE_RATE
    assert abs(content_s - len(reference) / COMPARE_RATE) <= frame + 1e-3, (name, content_s)
    # The encoder delay is the codec's, not a packaging accident: AAC priming is 1024 samples.
    expected_delay_s = {"aac": 1024 / rendition.sample_rate, "opus": 0.0, "flac": 0.0}
    assert abs(lag / COMPARE_RATE - expected_delay_s[rendition.codec]) < 0.002, (name, lag)

    # Loudness of the decode is within 1 LU of the master's published measurement.
    assert abs(_loudness(clear) - record.loudness.integrated_lufs) <= 1.0


def test_track_record_describes_the_master(published: Published) -> None:
    record = published.result.record
    assert not published.result.reused
    assert record.duration_s == pytest.approx(20.0, abs=0.01)
    assert record.source.sample_rate == 44_100 and record.source.channels == 2
    assert -30 < record.loudness.integrated_lufs < -5
    assert record.loudness.true_peak_dbtp + record.loudness.playback_gain_db <= -1.0 + 1e-6
    assert record.metadata == {"title": "Test Tones"}
    assert {r.name for r in record.renditions} == {s.name for s in DEFAULT_LADDER}
    assert {r.codecs for r in record.renditions} == {"mp4a.40.2", "opus", "fLaC"}
    current = decode_track_record(published.store.get(current_record_key(record.track_id)))
    assert current == record


def test_premium_renditions_never_share_a_key_with_free_ones(published: Published) -> None:
    record = published.result.record
    used: dict[str, set[str]] = {"free": set(), "premium": set()}
    for rendition in record.renditions:
        for segment in rendition.segments:
            used[rendition.tier].add(segment.key_id)
            assert record.key(segment.key_id).tier == rendition.tier
    assert used["free"] and used["premium"] and not used["free"] & used["premium"]
    assert {r.name for r in record.renditions if r.tier == "premium"} == {"aac_256", "flac"}


def test_keys_rotate_every_n_segments_and_no_key_meets_an_iv_twice(published: Published) -> None:
    rotation = published.settings.key_rotation_segments
    pairs = []
    for rendition in published.result.record.renditions:
        ids = [s.key_id for s in rendition.segments]
        for index, key_id in enumerate(ids):
            assert key_id == ids[(index // rotation) * rotation]
        # Each segment's IV is its Media Sequence Number (RFC 8216 5.2), so players derive it.
        for index, segment in enumerate(rendition.segments):
            number = rendition.media_sequence + index
            assert segment.iv_hex == number.to_bytes(16, "big").hex()
            pairs.append((segment.key_id, segment.iv_hex))
    # Renditions of a tier share keys: their numbers (so IVs) must not meet under one key.
    assert len(set(pairs)) == len(pairs)
    assert len({r.media_sequence for r in published.result.record.renditions}) > 1


def test_no_clear_key_is_stored(published: Published) -> None:
    record_bytes = published.store.get(current_record_key(published.result.record.track_id))
    raw = json.loads(record_bytes)
    assert all(
        set(key) == {"key_id", "tier", "period", "kek_id", "wrapped_b64"} for key in raw["keys"]
    )
    assert all(len(key["wrapped_b64"]) > 40 for key in raw["keys"])  # nonce + 16 + tag


def test_published_playlists_parse_lint_and_agree_with_the_record(published: Published) -> None:
    record = published.result.record
    prefix = version_prefix(record.track_id, record.version)
    for rendition in record.renditions:
        text = published.store.get(f"{prefix}/{rendition.playlist_key}").decode()
        ours = parse_media(text)
        assert lint_media(ours) == []
        theirs = m3u8.loads(text)
        assert theirs.playlist_type == "vod" and theirs.is_endlist
        assert theirs.target_duration == rendition.target_duration_s
        durations = [s.duration for s in theirs.segments if s.duration is not None]
        assert durations == pytest.approx([s.duration_s for s in rendition.segments])
        assert all(round(d) <= rendition.target_duration_s for d in durations)
        assert sum(durations) == pytest.approx(record.duration_s, abs=FRAME_S[rendition.codec] * 2)
        assert theirs.segment_map[0].uri == "init.mp4"
        assert theirs.media_sequence == rendition.media_sequence
        # One EXT-X-KEY per key period, without IV: segments use their sequence numbers.
        assert all(
            s.key is not None and s.key.method == "AES-128" and s.key.iv is None
            for s in theirs.segments
        )
        periods = {s.key_id for s in rendition.segments}
        assert text.count("#EXT-X-KEY:") == len(periods)
        # BANDWIDTH is the measured peak of the stored (encrypted) segments.
        sizes = [published.store.stat(f"{prefix}/{s.key}").size for s in rendition.segments]
        peak = max(
            size * 8 / s.duration_s for size, s in zip(sizes, rendition.segments, strict=True)
        )
        assert rendition.bandwidth == math.ceil(peak)
        assert rendition.average_bandwidth <= rendition.bandwidth
        if rendition.codec == "aac":
            # AAC is near-CBR: within reach of the nominal bitrate, container included. (libopus
            # is VBR and spends well over 32 kbit/s on this synthetic master, by design.)
            assert rendition.bitrate_kbps is not None
            assert 0.7 < rendition.average_bandwidth / (rendition.bitrate_kbps * 1000) < 1.4


def test_segments_are_cut_at_the_target_duration(published: Published) -> None:
    for rendition in published.result.record.renditions:
        durations = [s.duration_s for s in rendition.segments]
        assert all(d >= 1.0 for d in durations)  # no stray tail segments
        assert all(abs(d - 6.0) < 0.25 for d in durations[:-1])


def test_aac_priming_is_signalled_in_the_edit_list(published: Published) -> None:
    record = published.result.record
    prefix = version_prefix(record.track_id, record.version)
    for rendition in record.renditions:
        init = published.store.get(f"{prefix}/{rendition.init_key}")
        expected = 1024 if rendition.codec == "aac" else 0
        assert rendition.encoder_delay_samples == expected
        assert edit_media_time(init) == expected
