"""Problems a player (Apple's, hls.js) would trip on that construction lets through.

Construction refuses what RFC 8216 forbids outright; these checks find what is legal to
build but breaks or weakens playback. Each check yields one sentence per problem.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from manifests.duration import format_duration
from manifests.model import Key, MediaPlaylist, MultivariantPlaylist

# Fragmented MP4 / CMAF segment names, which need an initialization section (EXT-X-MAP).
_FMP4_SUFFIXES = (".m4s", ".mp4", ".m4a", ".cmfa", ".cmfv", ".cmft")
_DEFAULT_PATHWAY = "."  # a variant without PATHWAY-ID is on pathway "." (rfc8216bis 4.4.6.2)


def _is_fmp4(uri: str) -> bool:
    path = uri.split("?", 1)[0].split("#", 1)[0]
    return path.lower().endswith(_FMP4_SUFFIXES)


def _where(index: int, uri: str) -> str:
    return f"segment {index} ({uri})"


# Media Playlist checks


def _no_segments(p: MediaPlaylist) -> Iterator[str]:
    if not p.segments:
        yield "the playlist has no segments, so a player has nothing to start"


def _fmp4_without_map(p: MediaPlaylist) -> Iterator[str]:
    """An fMP4 segment is undecodable without an initialization section (4.3.2.5)."""
    has_map = False
    for index, segment in enumerate(p.segments):
        has_map = has_map or segment.map is not None
        if _is_fmp4(segment.uri) and not has_map:
            yield (
                f"{_where(index, segment.uri)} is fMP4 but no EXT-X-MAP precedes it; "
                "players cannot decode it without the initialization section (RFC 8216 4.3.2.5)"
            )
            return


def _container_switch(p: MediaPlaylist) -> Iterator[str]:
    """A change of file format needs EXT-X-DISCONTINUITY (4.3.2.3)."""
    for index in range(1, len(p.segments)):
        before, segment = p.segments[index - 1], p.segments[index]
        if _is_fmp4(before.uri) != _is_fmp4(segment.uri) and not segment.discontinuity:
            fmp4, other = "fMP4", "another format"
            was, now = (other, fmp4) if _is_fmp4(segment.uri) else (fmp4, other)
            yield (
                f"{_where(index, segment.uri)} switches from {was} to {now} without "
                "EXT-X-DISCONTINUITY (RFC 8216 4.3.2.3)"
            )


def _version_needs(p: MediaPlaylist) -> Iterator[tuple[int, str, str]]:
    """(version, feature, where) for each use of a feature section 7 versions."""
    for index, segment in enumerate(p.segments):
        where = _where(index, segment.uri)
        key: Key | None = segment.key
        if key is not None and key.iv is not None:
            yield 2, "the IV attribute of EXT-X-KEY", where
        duration = format_duration(segment.duration)
        if "." in duration:
            yield 3, "a fractional EXTINF duration", f"{where}, EXTINF {duration}"
        if segment.byterange is not None:
            yield 4, "EXT-X-BYTERANGE", where
        if key is not None and key.method == "SAMPLE-AES":
            yield 5, "EXT-X-KEY METHOD=SAMPLE-AES", where
        if key is not None and (key.keyformat or key.keyformatversions):
            yield 5, "the KEYFORMAT and KEYFORMATVERSIONS attributes of EXT-X-KEY", where
        if segment.map is not None:
            # 5 would do with EXT-X-I-FRAMES-ONLY, which this model never writes.
            yield 6, "EXT-X-MAP in a playlist without EXT-X-I-FRAMES-ONLY", where


def _version_too_low(p: MediaPlaylist) -> Iterator[str]:
    """Older players misread features newer than the declared EXT-X-VERSION (section 7)."""
    reported: set[str] = set()
    for needed, feature, where in _version_needs(p):
        if needed > p.version and feature not in reported:
            reported.add(feature)
            yield (
                f"EXT-X-VERSION {p.version} is too low: {feature}, first used at {where}, "
                f"needs version {needed} or higher (RFC 8216 section 7)"
            )


def _map_under_key_without_iv(p: MediaPlaylist) -> Iterator[str]:
    """An AES-128 init section has no sequence number to derive an IV from (4.3.2.5)."""
    key: Key | None = None
    for index, segment in enumerate(p.segments):
        # EXT-X-MAP is written before this segment's EXT-X-KEY, so the earlier key covers it.
        unsafe = key is not None and key.method == "AES-128" and key.iv is None
        if segment.map is not None and unsafe:
            yield (
                f"the EXT-X-MAP before {_where(index, segment.uri)} is encrypted by an "
                "AES-128 EXT-X-KEY without an IV; an encrypted initialization section "
                "needs one (RFC 8216 4.3.2.5)"
            )
        if segment.key is not None:
            key = segment.key


_MEDIA_CHECKS: tuple[Callable[[MediaPlaylist], Iterator[str]], ...] = (
    _no_segments,
    _fmp4_without_map,
    _container_switch,
    _version_too_low,
    _map_under_key_without_iv,
)


def lint_media(p: MediaPlaylist) -> list[str]:
    """Human-readable problems with a Media Playlist; an empty list means clean."""
    return [problem for check in _MEDIA_CHECKS for problem in check(p)]


# Multivariant Playlist checks


def _missing_codecs(p: MultivariantPlaylist) -> Iterator[str]:
    for index, variant in enumerate(p.variants):
        if variant.codecs is None:
            yield (
                f"variant {index} ({variant.uri}) has no CODECS; players must then download "
                "media to learn whether they can play it (RFC 8216 4.3.4.2 SHOULD)"
            )


def _average_above_peak(p: MultivariantPlaylist) -> Iterator[str]:
    for index, variant in enumerate(p.variants):
        average = variant.average_bandwidth
        if average is not None and average > variant.bandwidth:
            yield (
                f"variant {index} ({variant.uri}) has AVERAGE-BANDWIDTH {average} above its "
                f"peak BANDWIDTH {variant.bandwidth}"
            )


def _duplicate_uris(p: MultivariantPlaylist) -> Iterator[str]:
    """Two variants of one pathway with one URI cannot differ; a player sees one stream."""
    first: dict[tuple[str, str], int] = {}
    for index, variant in enumerate(p.variants):
        pair = (variant.pathway_id or _DEFAULT_PATHWAY, variant.uri)
        if pair in first:
            yield f"variant {index} repeats the URI {variant.uri} of variant {first[pair]}"
        else:
            first[pair] = index


def _audio_without_media(p: MultivariantPlaylist) -> Iterator[str]:
    """AUDIO must name an EXT-X-MEDIA GROUP-ID (4.3.4.2), and this model writes none."""
    for index, variant in enumerate(p.variants):
        if variant.audio is not None:
            yield (
                f"variant {index} ({variant.uri}) names AUDIO group {variant.audio!r}, but the "
                "playlist has no EXT-X-MEDIA tag to define it (RFC 8216 4.3.4.2)"
            )


def _unknown_steering_pathway(p: MultivariantPlaylist) -> Iterator[str]:
    steering = p.content_steering
    if steering is None or steering.pathway_id is None:
        return
    pathways = {variant.pathway_id or _DEFAULT_PATHWAY for variant in p.variants}
    if steering.pathway_id not in pathways:
        yield (
            f"EXT-X-CONTENT-STEERING PATHWAY-ID {steering.pathway_id!r} is no variant's "
            f"pathway (variants use {', '.join(sorted(pathways))})"
        )


_MULTIVARIANT_CHECKS: tuple[Callable[[MultivariantPlaylist], Iterator[str]], ...] = (
    _missing_codecs,
    _average_above_peak,
    _duplicate_uris,
    _audio_without_media,
    _unknown_steering_pathway,
)


def lint_multivariant(p: MultivariantPlaylist) -> list[str]:
    """Human-readable problems with a Multivariant Playlist; an empty list means clean."""
    return [problem for check in _MULTIVARIANT_CHECKS for problem in check(p)]
