"""WAV and AIFF chunk headers (transcoder/pcm_headers.py) and the ingest check built on them
(`pipeline.check_declared_length`): chunk lists with any ids and sizes, big- and
little-endian, cut anywhere. The check accepts the master or rejects it as a MasterRejected
with a message; nothing else."""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.counting import SCALES, budget, tried
from tests.fuzz.targets import (
    MasterRejected,
    ProbeResult,
    check_declared_length,
    declared_pcm_data,
)

SIZES = st.integers(0, 2**32 - 1) | st.sampled_from([0, 1, 7, 8, 9, 16, 0xFFFFFFFF, 0xFFFFFFFE])
CHUNK_IDS = st.sampled_from([b"fmt ", b"data", b"SSND", b"COMM", b"LIST", b"JUNK"]) | st.binary(
    min_size=4, max_size=4
)


@st.composite
def pcm_files(draw: st.DrawFn) -> bytes:
    """A RIFF/WAVE or FORM/AIFF(C) file: chunks with declared sizes that may lie, the payload
    shorter or longer than declared, and the whole thing possibly cut short."""
    big_endian = draw(st.booleans())
    size_format = ">I" if big_endian else "<I"
    form, kind = (b"FORM", draw(st.sampled_from([b"AIFF", b"AIFC"]))) if big_endian else (
        b"RIFF", b"WAVE")  # fmt: skip
    chunks = b""
    for _ in range(draw(st.integers(0, 5))):
        declared = draw(SIZES)
        payload = draw(st.binary(max_size=64))
        chunks += draw(CHUNK_IDS) + struct.pack(size_format, declared) + payload
    data = form + struct.pack(size_format, draw(SIZES)) + kind + chunks
    return data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data


@pytest.mark.parametrize("scale", SCALES)
def test_declared_pcm_data(scale: int) -> None:
    @budget(500, scale)
    @given(pcm_files() | st.binary(max_size=200))
    def check(data: bytes) -> None:
        tried("WAV/AIFF headers (declared_pcm_data, check_declared_length)")
        declared_pcm_data(data)
        with tempfile.TemporaryDirectory() as tmp:
            master = Path(tmp) / "master.bin"
            master.write_bytes(data)
            probe = ProbeResult("wav", "pcm_s16le", 44_100, 2, 16, 1.0, len(data))
            try:
                check_declared_length(master, probe, "master.bin")
            except MasterRejected as exc:
                assert exc.code == "truncated" and "master.bin" in str(exc)

    check()
