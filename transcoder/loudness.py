"""EBU R128 / ITU-R BS.1770 results from ffmpeg's ebur128 summary, and the playback gain."""

from __future__ import annotations

import re

from streamer.catalog import Loudness

TARGET_LUFS = -14.0  # the level streaming services normalise to
MAX_TRUE_PEAK_DBTP = -1.0  # headroom for lossy decoding overshoot (EBU R128 s1, AES TD1004)
SILENCE_LUFS = -70.0  # BS.1770's absolute gate: a track fully below it has no loudness at all
SILENT_PEAK_DBTP = -60.0

_SUMMARY = re.compile(
    r"Integrated loudness:\s+I:\s+(?P<i>-?[\d.]+|-inf) LUFS.*?"
    r"Loudness range:\s+LRA:\s+(?P<lra>-?[\d.]+) LU.*?"
    r"True peak:\s+Peak:\s+(?P<tp>-?[\d.]+|-inf) dBFS",
    re.S,
)


class LoudnessUnavailable(ValueError):
    """ffmpeg's log held no ebur128 summary."""


def parse_ebur128_summary(log: str) -> tuple[float, float, float]:
    """(integrated LUFS, loudness range LU, true peak dBTP) from the last summary in `log`."""
    matches = list(_SUMMARY.finditer(log))
    if not matches:
        raise LoudnessUnavailable("no ebur128 summary in the ffmpeg log")
    found = matches[-1]

    def number(text: str) -> float:
        return -float("inf") if text == "-inf" else float(text)

    return number(found["i"]), number(found["lra"]), number(found["tp"])


def playback_gain_db(integrated_lufs: float, true_peak_dbtp: float) -> float:
    """Gain to reach TARGET_LUFS without pushing the true peak above MAX_TRUE_PEAK_DBTP."""
    if integrated_lufs <= SILENCE_LUFS:
        return 0.0
    gain = TARGET_LUFS - integrated_lufs
    return round(min(gain, MAX_TRUE_PEAK_DBTP - true_peak_dbtp), 2)


def is_silent(integrated_lufs: float, true_peak_dbtp: float) -> bool:
    return integrated_lufs <= SILENCE_LUFS or true_peak_dbtp < SILENT_PEAK_DBTP


def measure(log: str) -> Loudness:
    integrated, lra, peak = parse_ebur128_summary(log)
    floor = SILENCE_LUFS
    return Loudness(
        integrated_lufs=max(integrated, floor),
        range_lu=lra,
        true_peak_dbtp=max(peak, -200.0),
        playback_gain_db=playback_gain_db(integrated, peak),
        target_lufs=TARGET_LUFS,
    )
