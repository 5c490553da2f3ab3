"""The encoding ladder: which renditions ingest produces, and who may play them."""

from __future__ import annotations

from dataclasses import dataclass

from streamer.catalog import Codec, Tier

CODECS_STRING: dict[Codec, str] = {"aac": "mp4a.40.2", "opus": "opus", "flac": "fLaC"}

OPUS_SAMPLE_RATE = 48_000  # Opus always runs at 48 kHz internally (RFC 6716)
AAC_MAX_SAMPLE_RATE = 48_000  # higher rates only cost bits in a lossy rendition
FREE_TIER_MAX_KBPS = 160


@dataclass(frozen=True)
class RenditionSpec:
    name: str
    codec: Codec
    bitrate_kbps: int | None  # None: lossless
    tier: Tier

    def __post_init__(self) -> None:
        if (self.codec == "flac") != (self.bitrate_kbps is None):
            raise ValueError(f"rendition {self.name}: only flac is lossless and has no bitrate")


DEFAULT_LADDER: tuple[RenditionSpec, ...] = (
    RenditionSpec("aac_96", "aac", 96, "free"),
    RenditionSpec("aac_160", "aac", 160, "free"),
    RenditionSpec("aac_256", "aac", 256, "premium"),
    RenditionSpec("opus_32", "opus", 32, "free"),
    RenditionSpec("opus_96", "opus", 96, "free"),
    RenditionSpec("opus_160", "opus", 160, "free"),
    RenditionSpec("flac", "flac", None, "premium"),
)
