"""Builders for test masters, made by the real ffmpeg from Debian."""

from __future__ import annotations

import subprocess
from pathlib import Path

# Tonal content with slow envelopes plus a little noise: lossy codecs keep its waveform, so a
# decode can be compared sample by sample with the master after alignment.
_LEFT = (
    "0.30*sin(2*PI*220*t)*(0.6+0.4*sin(2*PI*0.5*t))"
    "+0.20*sin(2*PI*554.37*t)*(0.5+0.5*sin(2*PI*0.23*t))"
    "+0.10*sin(2*PI*1318.5*t)"
)
_RIGHT = (
    "0.30*sin(2*PI*329.63*t)*(0.6+0.4*sin(2*PI*0.4*t))"
    "+0.20*sin(2*PI*440*t)*(0.5+0.5*sin(2*PI*0.31*t))"
    "+0.08*sin(2*PI*2093*t)"
)


def make_master(
    path: Path,
    *,
    seconds: float = 20.0,
    rate: int = 44_100,
    channels: int = 2,
    codec_args: tuple[str, ...] = (),
    silent: bool = False,
) -> Path:
    """Write a music-like master; the container follows the file suffix."""
    if silent:
        source = f"anullsrc=r={rate}:cl=stereo:d={seconds}"
        graph = "[0:a]anull"
    else:
        source = f"aevalsrc='{_LEFT}|{_RIGHT}':s={rate}:d={seconds}"
        graph = (
            f"anoisesrc=c=pink:r={rate}:a=0.02:d={seconds}:seed=7[n];"
            "[0:a][n]amix=inputs=2:normalize=0"
        )
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[channels]
    if channels == 1:
        graph += ",pan=mono|c0=0.5*c0+0.5*c1"
    elif channels == 6:
        graph += ",pan=5.1|FL=c0|FR=c1|FC=0.5*c0+0.5*c1|LFE=0.1*c0|BL=0.5*c0|BR=0.5*c1"
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source,
            "-filter_complex", graph + f",aformat=channel_layouts={layout}",
            *codec_args, str(path),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    return path


def decode_pcm(path: Path, rate: int, *, mono: bool = True) -> bytes:
    """Decode any file to float32 little-endian PCM at `rate` (mono mixdown by default)."""
    args = ["ffmpeg", "-v", "error", "-i", str(path), "-f", "f32le", "-ar", str(rate)]
    if mono:
        args += ["-ac", "1"]
    return subprocess.run([*args, "-"], check=True, capture_output=True, timeout=120).stdout
