"""Comparing a decode with its master: alignment by cross-correlation, and the bars to pass."""

from __future__ import annotations

import math

import numpy as np

COMPARE_RATE = 48_000
# Waveform correlation with the master after alignment, per rendition. Measured on the tonal
# test master (tests.masters; typical values in brackets) with margin; a broken decode, a wrong
# key or a misaligned segment falls far below any of them.
MIN_CORRELATION = {
    "aac_96": 0.97,  # [0.995]
    "aac_160": 0.98,  # [0.998]
    "aac_256": 0.98,  # [0.999]
    "opus_32": 0.80,  # [0.93] Opus at 32 kbit/s reshapes high bands
    "opus_96": 0.95,  # [0.99]
    "opus_160": 0.97,  # [0.995]
    "flac": 0.99999,  # lossless
}


def align(reference: np.ndarray, decoded: np.ndarray, max_lag: int) -> int:
    """Lag (in samples) at which `decoded` best matches `reference`, by FFT cross-correlation."""
    window = reference[: COMPARE_RATE * 4]
    probe = decoded[: COMPARE_RATE * 4 + max_lag]
    size = 1 << math.ceil(math.log2(len(window) + len(probe)))
    corr = np.fft.irfft(np.fft.rfft(probe, size) * np.conj(np.fft.rfft(window, size)), size)
    return int(np.argmax(corr[: max_lag + 1]))


def aligned_correlation(
    reference: np.ndarray, decoded: np.ndarray, max_lag: int = COMPARE_RATE // 10
) -> tuple[float, int]:
    """Pearson correlation of `decoded` with `reference` after alignment, and the lag used."""
    lag = align(reference, decoded, max_lag)
    usable = min(len(reference), len(decoded) - lag)
    a, b = reference[:usable], decoded[lag : lag + usable]
    return float(np.corrcoef(a, b)[0, 1]), lag
