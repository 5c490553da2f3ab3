"""Playlist text from the model: one small function per tag, dispatched through tuples.

An edge renders a playlist per listener request, so this is plain string building over
already-validated values: nothing is checked or compiled per call.
"""

from __future__ import annotations

from collections.abc import Callable

from manifests.duration import format_duration
from manifests.model import (
    ByteRange,
    ContentSteering,
    DateRange,
    Key,
    MediaPlaylist,
    MultivariantPlaylist,
    Segment,
    SessionData,
    SessionKey,
    VariantStream,
)


def _extm3u(_: object) -> str:
    """EXTM3U, the first line of every playlist (4.3.1.1)."""
    return "#EXTM3U\n"


def _version(p: MediaPlaylist | MultivariantPlaylist) -> str:
    """EXT-X-VERSION (4.3.1.2)."""
    return f"#EXT-X-VERSION:{p.version}\n"


def _independent_segments(p: MediaPlaylist | MultivariantPlaylist) -> str:
    """EXT-X-INDEPENDENT-SEGMENTS (4.3.5.1)."""
    return "#EXT-X-INDEPENDENT-SEGMENTS\n" if p.independent_segments else ""


def _byterange_value(r: ByteRange) -> str:
    """`n[@o]`, the byte range syntax of 4.3.2.2."""
    return f"{r.length}" if r.offset is None else f"{r.length}@{r.offset}"


def _key_attributes(k: Key | SessionKey) -> str:
    """The attribute-list EXT-X-KEY and EXT-X-SESSION-KEY share (4.3.2.4, 4.3.4.5)."""
    attrs = f"METHOD={k.method}"
    if k.uri is not None:
        attrs += f',URI="{k.uri}"'
    if k.iv is not None:
        # hexadecimal-sequence: 0x then [0-9A-F] (4.2), all 128 bits.
        attrs += f",IV=0x{k.iv.hex().upper()}"
    if k.keyformat is not None:
        attrs += f',KEYFORMAT="{k.keyformat}"'
    if k.keyformatversions is not None:
        attrs += f',KEYFORMATVERSIONS="{k.keyformatversions}"'
    return attrs


# Media Playlist header (4.3.3)


def _target_duration(p: MediaPlaylist) -> str:
    """EXT-X-TARGETDURATION (4.3.3.1)."""
    return f"#EXT-X-TARGETDURATION:{p.target_duration}\n"


def _media_sequence(p: MediaPlaylist) -> str:
    """EXT-X-MEDIA-SEQUENCE (4.3.3.2)."""
    return f"#EXT-X-MEDIA-SEQUENCE:{p.media_sequence}\n"


def _playlist_type(p: MediaPlaylist) -> str:
    """EXT-X-PLAYLIST-TYPE (4.3.3.5)."""
    return "" if p.playlist_type is None else f"#EXT-X-PLAYLIST-TYPE:{p.playlist_type}\n"


def _endlist(p: MediaPlaylist) -> str:
    """EXT-X-ENDLIST (4.3.3.4)."""
    return "#EXT-X-ENDLIST\n" if p.endlist else ""


# Media Segment tags (4.3.2), in the order they precede the URI line


def _discontinuity(s: Segment) -> str:
    """EXT-X-DISCONTINUITY (4.3.2.3)."""
    return "#EXT-X-DISCONTINUITY\n" if s.discontinuity else ""


def _map(s: Segment) -> str:
    """EXT-X-MAP (4.3.2.5)."""
    m = s.map
    if m is None:
        return ""
    if m.byterange is None:
        return f'#EXT-X-MAP:URI="{m.uri}"\n'
    return f'#EXT-X-MAP:URI="{m.uri}",BYTERANGE="{_byterange_value(m.byterange)}"\n'


def _key(s: Segment) -> str:
    """EXT-X-KEY (4.3.2.4)."""
    return "" if s.key is None else f"#EXT-X-KEY:{_key_attributes(s.key)}\n"


def _byterange(s: Segment) -> str:
    """EXT-X-BYTERANGE (4.3.2.2)."""
    return "" if s.byterange is None else f"#EXT-X-BYTERANGE:{_byterange_value(s.byterange)}\n"


def _program_date_time(s: Segment) -> str:
    """EXT-X-PROGRAM-DATE-TIME (4.3.2.6)."""
    return (
        "" if s.program_date_time is None else f"#EXT-X-PROGRAM-DATE-TIME:{s.program_date_time}\n"
    )


def _one_date_range(d: DateRange) -> str:
    """EXT-X-DATERANGE (4.3.2.7); interstitials are a CLASS of it (bis Appendix D)."""
    attributes = [f'ID="{d.id}"']
    if d.class_name is not None:
        attributes.append(f'CLASS="{d.class_name}"')
    attributes.append(f'START-DATE="{d.start_date}"')
    if d.cue is not None:
        attributes.append(f'CUE="{d.cue}"')
    if d.duration is not None:
        attributes.append(f"DURATION={format_duration(d.duration)}")
    for name, value in d.client_attributes:
        text = f'"{value}"' if isinstance(value, str) else format_duration(value)
        attributes.append(f"{name}={text}")
    return f"#EXT-X-DATERANGE:{','.join(attributes)}\n"


def _date_ranges(s: Segment) -> str:
    return "".join(_one_date_range(d) for d in s.date_ranges)


def _extinf(s: Segment) -> str:
    """EXTINF (4.3.2.1) and the URI line it describes."""
    return f"#EXTINF:{format_duration(s.duration)},{s.title}\n{s.uri}\n"


_MEDIA_HEADER: tuple[Callable[[MediaPlaylist], str], ...] = (
    _extm3u,
    _version,
    _target_duration,
    _media_sequence,
    _playlist_type,
    _independent_segments,
)
_SEGMENT_TAGS: tuple[Callable[[Segment], str], ...] = (
    _discontinuity,
    _map,
    _key,
    _byterange,
    _program_date_time,
    _date_ranges,
    _extinf,
)
_MEDIA_FOOTER: tuple[Callable[[MediaPlaylist], str], ...] = (_endlist,)


def render_media(p: MediaPlaylist) -> str:
    """The text of a Media Playlist (RFC 8216 4.3.3), lines ending in LF."""
    parts = [tag(p) for tag in _MEDIA_HEADER]
    append = parts.append
    for segment in p.segments:
        for tag in _SEGMENT_TAGS:
            append(tag(segment))
    parts.extend(tag(p) for tag in _MEDIA_FOOTER)
    return "".join(parts)


# Multivariant Playlist tags (4.3.4)


def _content_steering(p: MultivariantPlaylist) -> str:
    """EXT-X-CONTENT-STEERING (rfc8216bis 4.4.6.6)."""
    c: ContentSteering | None = p.content_steering
    if c is None:
        return ""
    if c.pathway_id is None:
        return f'#EXT-X-CONTENT-STEERING:SERVER-URI="{c.server_uri}"\n'
    return f'#EXT-X-CONTENT-STEERING:SERVER-URI="{c.server_uri}",PATHWAY-ID="{c.pathway_id}"\n'


def _one_session_data(d: SessionData) -> str:
    attrs = f'DATA-ID="{d.data_id}"'
    if d.value is not None:
        attrs += f',VALUE="{d.value}"'
    if d.uri is not None:
        attrs += f',URI="{d.uri}"'
    if d.language is not None:
        attrs += f',LANGUAGE="{d.language}"'
    return f"#EXT-X-SESSION-DATA:{attrs}\n"


def _session_data(p: MultivariantPlaylist) -> str:
    """EXT-X-SESSION-DATA, one line per entry (4.3.4.4)."""
    return "".join([_one_session_data(d) for d in p.session_data])


def _session_keys(p: MultivariantPlaylist) -> str:
    """EXT-X-SESSION-KEY, one line per key (4.3.4.5)."""
    return "".join([f"#EXT-X-SESSION-KEY:{_key_attributes(k)}\n" for k in p.session_keys])


def _one_variant(v: VariantStream) -> str:
    attrs = f"BANDWIDTH={v.bandwidth}"
    if v.average_bandwidth is not None:
        attrs += f",AVERAGE-BANDWIDTH={v.average_bandwidth}"
    if v.codecs is not None:
        attrs += f',CODECS="{v.codecs}"'
    if v.pathway_id is not None:
        attrs += f',PATHWAY-ID="{v.pathway_id}"'
    if v.stable_variant_id is not None:
        attrs += f',STABLE-VARIANT-ID="{v.stable_variant_id}"'
    if v.audio is not None:
        attrs += f',AUDIO="{v.audio}"'
    return f"#EXT-X-STREAM-INF:{attrs}\n{v.uri}\n"


def _variants(p: MultivariantPlaylist) -> str:
    """EXT-X-STREAM-INF and its URI line, per Variant Stream (4.3.4.2)."""
    return "".join([_one_variant(v) for v in p.variants])


_MULTIVARIANT_TAGS: tuple[Callable[[MultivariantPlaylist], str], ...] = (
    _extm3u,
    _version,
    _independent_segments,
    _content_steering,
    _session_data,
    _session_keys,
    _variants,
)


def render_multivariant(p: MultivariantPlaylist) -> str:
    """The text of a Multivariant Playlist (RFC 8216 4.3.4), lines ending in LF."""
    return "".join([tag(p) for tag in _MULTIVARIANT_TAGS])
