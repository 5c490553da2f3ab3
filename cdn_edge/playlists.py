"""Per-session playlists: built once per track as templates, filled with tokens per request.

The `manifests` model is built and rendered once per (version, rendition) or (version, variant
set) with placeholder tokens, then split at the placeholders. A request only signs its tokens
and joins strings, which keeps a personalised playlist near the cost of one HMAC.

    multivariant   only the session's variants, CODECS, BANDWIDTH, AVERAGE-BANDWIDTH,
                   EXT-X-SESSION-KEY (the first key of each variant, for prefetch, 4.3.4.5),
                   EXT-X-SESSION-DATA with the loudness gain (4.3.4.4)
    media          EXT-X-MAP, then EXT-X-KEY (AES-128, per-segment IV) wherever the key or IV
                   changes, and segment URIs carrying the session's segment token
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from cdn_edge.catalog_cache import PublishedTrack
from cdn_edge.errors import NotEntitled, NotFound
from cdn_edge.negotiation import Offer, is_entitled
from cdn_edge.playback_tokens import PlaybackTokens, SessionClaims
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
    render_media,
    render_multivariant,
)
from streamer.catalog import RenditionRecord

KEY_METHOD = "AES-128"  # full-segment AES-128-CBC, RFC 8216 4.3.2.4 (see drm.segment_crypto)
LOUDNESS_DATA_ID = "com.streamer.loudness"  # reverse-DNS DATA-ID, RFC 8216 4.3.4.4
MAX_TEMPLATES = 4096
MULTIVARIANT_NAME = "main"

# Placeholders cannot occur in real URIs: '~' is outside every name the edge accepts.
_SEGMENT_SLOT = "~s~"
_PLACEHOLDER = re.compile(r"~(s|k[0-9]+)~")

# Where a future steering or CDN policy plugs in: the host segment URIs point at, per session.
SegmentOrigin = Callable[[SessionClaims], str]
Steering = Callable[[SessionClaims], ContentSteering | None]


def media_playlist_name(rendition: str) -> str:
    return f"{rendition}.m3u8"


def _key_slot(index: int) -> str:
    return f"~k{index}~"


@dataclass(frozen=True)
class Template:
    """Rendered playlist text split at its token slots."""

    pieces: tuple[str, ...]  # literal text around the slots; one more than there are slots
    slots: tuple[int, ...]  # per slot: -1 for the segment token, else an index into key_ids
    key_ids: tuple[str, ...]

    @classmethod
    def split(cls, text: str, key_ids: tuple[str, ...]) -> Template:
        parts = _PLACEHOLDER.split(text)  # literal, slot name, literal, ..., literal
        slots = tuple(-1 if name == "s" else int(name[1:]) for name in parts[1::2])
        return cls(tuple(parts[0::2]), slots, key_ids)

    def fill(self, segment_token: str, key_tokens: tuple[str, ...]) -> str:
        values = [segment_token if i < 0 else key_tokens[i] for i in self.slots]
        out = [""] * (2 * len(self.pieces) - 1)
        out[0::2] = self.pieces
        out[1::2] = values
        return "".join(out)


class PlaylistBuilder:
    """Renders session playlists from published tracks, templates cached per track."""

    def __init__(
        self,
        base_url: str,
        tokens: PlaybackTokens,
        *,
        segment_origin: SegmentOrigin | None = None,
        steering: Steering | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._tokens = tokens
        # Hooks for the CDN steering issue; today segments come from this edge.
        self._segment_origin = segment_origin
        self._steering = steering
        self._templates: OrderedDict[tuple[str, ...], Template] = OrderedDict()

    # Requests

    def multivariant(self, track: PublishedTrack, session: SessionClaims, now: int) -> str:
        steering = None if self._steering is None else self._steering(session)
        template = self._template(
            ("mv", track.prefix, repr(steering), *session.variants),
            lambda: self._multivariant(track, session, steering),
        )
        return template.fill("", self._key_tokens(template, session, now))

    def media(
        self, track: PublishedTrack, session: SessionClaims, rendition_name: str, now: int
    ) -> str:
        """Raises NotFound for a rendition not offered, NotEntitled above the session's tier."""
        rendition = self.check_offered(track, session, rendition_name)
        origin = self._origin(session)
        template = self._template(
            ("m", track.prefix, rendition.name, origin),
            lambda: self._media(track, rendition, origin),
        )
        segment_token = self._tokens.sign_segment(session, track.record.duration_s, now)
        return template.fill(segment_token, self._key_tokens(template, session, now))

    @staticmethod
    def check_offered(
        track: PublishedTrack, session: SessionClaims, rendition_name: str
    ) -> RenditionRecord:
        rendition = track.renditions.get(rendition_name)
        if rendition is None:
            raise NotFound(f"track {track.record.track_id} has no rendition {rendition_name!r}")
        offer = Offer(rendition.name, rendition.codec, rendition.bitrate_kbps, rendition.tier)
        if not is_entitled(offer, session.tier):
            raise NotEntitled(f"rendition {rendition.name} is not part of the {session.tier} tier")
        if rendition.name not in session.variants:
            raise NotFound(f"rendition {rendition.name} was not offered to this session")
        return rendition

    # Templates

    def _template(self, cache_key: tuple[str, ...], build: Callable[[], Template]) -> Template:
        template = self._templates.get(cache_key)
        if template is None:
            template = build()
            self._templates[cache_key] = template
            if len(self._templates) > MAX_TEMPLATES:
                self._templates.popitem(last=False)
        else:
            self._templates.move_to_end(cache_key)
        return template

    def _key_tokens(self, template: Template, session: SessionClaims, now: int) -> tuple[str, ...]:
        return tuple(self._tokens.sign_key(session, kid, now) for kid in template.key_ids)

    def _origin(self, session: SessionClaims) -> str:
        if self._segment_origin is None:
            return self._base
        return self._segment_origin(session).rstrip("/")

    def _key_uri(self, key_id: str, slot: int) -> str:
        return f"{self._base}/v1/keys/{key_id}?t={_key_slot(slot)}"

    def _media(self, track: PublishedTrack, rendition: RenditionRecord, origin: str) -> Template:
        record = track.record
        seg_base = f"{origin}/v1/seg/{record.track_id}/{record.version}"
        key_ids: dict[str, int] = {}
        segments = []
        previous: tuple[str, str] | None = None
        for index, s in enumerate(rendition.segments):
            key = None
            if (s.key_id, s.iv_hex) != previous:
                slot = key_ids.setdefault(s.key_id, len(key_ids))
                key = Key(KEY_METHOD, self._key_uri(s.key_id, slot), bytes.fromhex(s.iv_hex))
                previous = (s.key_id, s.iv_hex)
            # EXT-X-MAP is written before EXT-X-KEY, so the (clear) init section is not
            # read as encrypted (RFC 8216 4.3.2.5).
            init = Map(f"{seg_base}/{rendition.init_key}?s={_SEGMENT_SLOT}") if index == 0 else None
            segments.append(
                Segment(f"{seg_base}/{s.key}?s={_SEGMENT_SLOT}", s.duration_s, key=key, map=init)
            )
        playlist = MediaPlaylist(
            target_duration=rendition.target_duration_s, segments=tuple(segments)
        )
        return Template.split(render_media(playlist), tuple(key_ids))

    def _multivariant(
        self, track: PublishedTrack, session: SessionClaims, steering: ContentSteering | None
    ) -> Template:
        record = track.record
        offered = [track.renditions[name] for name in session.variants]
        key_ids: list[str] = []
        for rendition in offered:
            if rendition.segments and rendition.segments[0].key_id not in key_ids:
                key_ids.append(rendition.segments[0].key_id)
        loudness = record.loudness
        playlist = MultivariantPlaylist(
            variants=tuple(
                VariantStream(
                    uri=media_playlist_name(r.name),
                    bandwidth=r.bandwidth,
                    average_bandwidth=r.average_bandwidth,
                    codecs=r.codecs,
                    stable_variant_id=r.name,
                )
                for r in offered
            ),
            session_keys=tuple(
                SessionKey(KEY_METHOD, self._key_uri(kid, i)) for i, kid in enumerate(key_ids)
            ),
            session_data=(
                SessionData(f"{LOUDNESS_DATA_ID}.gain-db", f"{loudness.playback_gain_db:.2f}"),
                SessionData(f"{LOUDNESS_DATA_ID}.target-lufs", f"{loudness.target_lufs:.1f}"),
                SessionData(
                    f"{LOUDNESS_DATA_ID}.integrated-lufs", f"{loudness.integrated_lufs:.2f}"
                ),
                SessionData(f"{LOUDNESS_DATA_ID}.true-peak-dbtp", f"{loudness.true_peak_dbtp:.2f}"),
            ),
            content_steering=steering,
        )
        return Template.split(render_multivariant(playlist), tuple(key_ids))
