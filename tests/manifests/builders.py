"""Representative playlists, built the way the transcoder and edge build them."""

from __future__ import annotations

from manifests import (
    ContentSteering,
    Key,
    Map,
    MediaPlaylist,
    MultivariantPlaylist,
    Segment,
    SessionData,
    SessionKey,
    VariantStream,
)

# AAC frames of 1024 samples at 48 kHz: 282 frames = 6.016 s, 281 = 5.994667 s, and so on.
ENCRYPTED_DURATIONS = (6.016, 5.994667, 6.016, 5.994667, 6.016, 2.346667)
KEY_ROTATION = 2  # a new key every two segments


def iv_for(index: int) -> bytes:
    """A fixed, recognisable IV per key (the real ones are random)."""
    return bytes([0xA0 + index] * 8 + list(range(8)))


def encrypted_media() -> MediaPlaylist:
    """aac_160 of track 42: fMP4, AES-128, key rotation every two segments, explicit IVs."""
    segments = []
    for index, duration in enumerate(ENCRYPTED_DURATIONS):
        key = None
        if index % KEY_ROTATION == 0:
            period = index // KEY_ROTATION
            key = Key("AES-128", f"https://edge.example.com/keys/42/{period}", iv_for(period))
        segments.append(
            Segment(
                uri=f"seg_{index:05d}.m4s",
                duration=duration,
                key=key,
                map=Map("init.mp4") if index == 0 else None,
            )
        )
    return MediaPlaylist(target_duration=6, segments=tuple(segments))


def steered_multivariant() -> MultivariantPlaylist:
    """Two AAC renditions on two CDN pathways, with a steering server and session data."""
    variants = tuple(
        VariantStream(
            uri=f"https://{cdn}.example.com/t/42/{name}/playlist.m3u8",
            bandwidth=bandwidth,
            average_bandwidth=average,
            codecs=codecs,
            pathway_id=cdn,
            stable_variant_id=name,
        )
        for cdn in ("cdn-a", "cdn-b")
        for name, bandwidth, average, codecs in (
            ("aac_64", 70_400, 66_000, "mp4a.40.5"),
            ("aac_160", 176_000, 165_000, "mp4a.40.2"),
        )
    )
    return MultivariantPlaylist(
        variants=variants,
        session_keys=(SessionKey("AES-128", "https://edge.example.com/keys/42/0", iv_for(0)),),
        session_data=(
            SessionData("com.example.title", value="Night Drive, Part 2", language="en"),
            SessionData("com.example.lyrics", uri="https://edge.example.com/t/42/lyrics.json"),
        ),
        content_steering=ContentSteering(
            "https://steer.example.com/v1/steering?session=s-7f3a", pathway_id="cdn-a"
        ),
    )
