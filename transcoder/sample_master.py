"""A generated sample master for the demo and the benchmarks: no audio files in the repository."""

from __future__ import annotations

import subprocess
from pathlib import Path

# A slow I-vi-IV-V progression of soft chords with a little pink noise: tonal enough to judge
# codecs by ear, busy enough that encoders have work to do.
_CHORDS = (
    (261.63, 329.63, 392.0),
    (220.0, 261.63, 329.63),
    (174.61, 220.0, 261.63),
    (196.0, 246.94, 293.66),
)
_BAR_S = 2.0


def _voice(channel_detune: float) -> str:
    terms = []
    period = _BAR_S * len(_CHORDS)
    for index, chord in enumerate(_CHORDS):
        gate = f"between(mod(t,{period}),{index * _BAR_S},{(index + 1) * _BAR_S})"
        envelope = f"(1-exp(-8*mod(t,{_BAR_S})))*exp(-0.6*mod(t,{_BAR_S}))"
        for note in chord:
            terms.append(f"{gate}*{envelope}*0.25*sin(2*PI*{note * channel_detune:.3f}*t)")
    return "+".join(terms)


def write_sample_master(path: Path, seconds: float = 30.0, rate: int = 44_100) -> Path:
    """Write a stereo sample master (format by suffix) of `seconds` to `path`.

    ffmpeg evaluates the chord expression per sample, which is slow; one cycle of the
    progression is rendered and then looped, with fresh noise over the whole length.
    """
    cycle = path.with_name(f".{path.stem}.cycle.wav")
    period = _BAR_S * len(_CHORDS)
    try:
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-f", "lavfi",
             "-i", f"aevalsrc='{_voice(1.0)}|{_voice(1.002)}':s={rate}:d={period}",
             "-c:a", "pcm_f32le", str(cycle)],
            check=True, timeout=120,
        )  # fmt: skip
        graph = (
            f"anoisesrc=c=pink:r={rate}:a=0.01:d={seconds}:seed=3[noise];"
            "[0:a][noise]amix=inputs=2:normalize=0:duration=first,aformat=channel_layouts=stereo"
        )
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-stream_loop", "-1", "-t", str(seconds),
             "-i", str(cycle), "-filter_complex", graph, "-sample_fmt", "s16", str(path)],
            check=True, timeout=300,
        )  # fmt: skip
    finally:
        cycle.unlink(missing_ok=True)
    return path
