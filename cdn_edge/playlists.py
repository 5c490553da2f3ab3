"""Per-session playlists: built once per track as templates, filled with tokens per request.

The `manifests` model is built and rendered once per (version, rendition) or (version, variant
set, first pathway) with placeholder tokens, then split at the placeholders. A request only
signs its tokens and joins strings, which keeps a personalised playlist near the cost of one
HMAC.

    multivariant   only the session's variants, CODECS, BANDWIDTH, AVERAGE-BANDWIDTH,
                   EXT-X-SESSION-KEY (the first key of each variant, for prefetch, 4.3.4.5),
                   EXT-X-SESSION-DATA with the loudness gain (4.3.4.4); with CDN pathways
                   configured, EXT-X-CONTENT-STEERING (rfc8216bis 4.4.6.6) and every variant
                   once per pathway, PATHWAY-ID and STABLE-VARIANT-ID set, its URI absolute
                   on that pathway's base URL, the session's first pathway listed first
    media          EXT-X-MEDIA-SEQUENCE, EXT-X-MAP, then EXT-X-KEY (AES-128) wherever the key
                   changes, its IV implied by each segment's Media Sequence Number (or, for
                   tracks published with random IVs, on every segment), and segment URIs
                   carrying the session's segment token

URL scheme. Media playlists name segments relatively ("../../seg/{track}/{version}/{name}?s="),
so they resolve to whichever host served the playlist: a CDN pathway's segments come from that
CDN (which may cache them), and one media playlist template serves every pathway. Key URIs are
absolute on this edge, "{base}/v1/keys/{session token}/{key id}": keys are personal and never
pass through, or sit in, a CDN, and one key has the same URI in every playlist of a session,
multivariant and media, on every pathway, so a player fetches it once.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from cdn_edge.catalog_cache import PublishedTrack
from cdn_edge.errors import NotEntitled, NotFound
from cdn_edge.negotiation import Offer, is_entitled
from cdn_edge.pathways import Pathway
from cdn_edge.playback_tokens import PlaybackTokens, SessionClaims
from drm import sequence_iv
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
# From a media playlist at {base}/v1/play/{token}/{rendition}.m3u8 to {base}/v1/seg/.
SEGMENTS_FROM_MEDIA_PLAYLIST = "../../seg"

# Placeholders cannot occur in real URIs: '~' is outside every name and token the edge
# accepts, and pathway base URLs are refused with one (see cdn_edge.pathways).
_SEGMENT_SLOT = "~s~"
_SESSION_SLOT = "~t~"
_PLACEHOLDER = re.compile(r"~([st])~")


def media_playlist_name(rendition: str) -> str:
    return f"{rendition}.m3u8"


def play_path(session_token: str) -> str:
    """The directory of a session's playlists, below a pathway's base URL."""
    return f"/v1/play/{session_token}"


def steering_path(session_token: str) -> str:
    return f"/v1/steer/{session_token}"


@dataclass(frozen=True)
class Template:
    """Rendered playlist text split at its token slots."""

    pieces: tuple[str, ...]  # literal text around the slots; one more than there are slots
    slots: tuple[str, ...]  # per slot: "s" the segment token, "t" the session token

    @classmethod
    def split(cls, text: str) -> Template:
        parts = _PLACEHOLDER.split(text)  # literal, slot name, literal, ..., literal
        return cls(tuple(parts[0::2]), tuple(parts[1::2]))

    def fill(self, session_token: str, segment_token: str = "") -> str:
        values = {"s": segment_token, "t": session_token}
        out = [""] * (2 * len(self.pieces) - 1)
        out[0::2] = self.pieces
        out[1::2] = [values[slot] for slot in self.slots]
        return "".join(out)


class PlaylistBuilder:
    """Renders session playlists from published tracks, templates cached per track."""

    def __init__(
        self, base_url: str, tokens: PlaybackTokens, pathways: tuple[Pathway, ...] = ()
    ) -> None:
        """`pathways`: where variants may be fetched; steering is on with two or more."""
        self._base = base_url.rstrip("/")
        self._tokens = tokens
        self._pathways = {p.id: p for p in pathways}
        self._templates: OrderedDict[tuple[str, ...], Template] = OrderedDict()

    @property
    def steered(self) -> bool:
        """Whether multivariant playlists carry EXT-X-CONTENT-STEERING."""
        return len(self._pathways) > 1

    # Requests

    def multivariant(
        self,
        track: PublishedTrack,
        session: SessionClaims,
        session_token: str,
        *,
        first_pathway: str = "",
    ) -> str:
        """`session_token` is the playlist URL's; with steering, `first_pathway` starts."""
        if not self.steered:
            template = self._template(
                ("mv", track.prefix, *session.variants),
                lambda: self._multivariant(track, session, None),
            )
            return template.fill(session_token)
        if first_pathway not in self._pathways:
            raise ValueError(
                f"a steered multivariant playlist needs one of the pathways "
                f"{sorted(self._pathways)} to start on, got {first_pathway!r}"
            )
        template = self._template(
            ("mvs", track.prefix, first_pathway, *session.variants),
            lambda: self._multivariant(track, session, first_pathway),
        )
        return template.fill(session_token)

    def media(
        self,
        track: PublishedTrack,
        session: SessionClaims,
        session_token: str,
        rendition_name: str,
        now: int,
    ) -> str:
        """Raises NotFound for a rendition not offered, NotEntitled above the session's tier."""
        rendition = self.check_offered(track, session, rendition_name)
        template = self._template(
            ("m", track.prefix, rendition.name), lambda: self._media(track, rendition)
        )
        segment_token = self._tokens.sign_segment(session, track.record.duration_s, now)
        return template.fill(session_token, segment_token)

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

    def _key_uri(self, key_id: str) -> str:
        return f"{self._base}/v1/keys/{_SESSION_SLOT}/{key_id}"

    def _media(self, track: PublishedTrack, rendition: RenditionRecord) -> Template:
        record = track.record
        seg_base = f"{SEGMENTS_FROM_MEDIA_PLAYLIST}/{record.track_id}/{record.version}"
        segments = []
        previous: tuple[str, bytes | None] | None = None
        for index, s in enumerate(rendition.segments):
            key = None
            # An IV equal to the segment's Media Sequence Number goes unsaid (RFC 8216 5.2):
            # one EXT-X-KEY per key period instead of one per segment, half the playlist.
            iv: bytes | None = bytes.fromhex(s.iv_hex)
            if iv == sequence_iv(rendition.media_sequence + index):
                iv = None
            if (s.key_id, iv) != previous:
                key = Key(KEY_METHOD, self._key_uri(s.key_id), iv)
                previous = (s.key_id, iv)
            # EXT-X-MAP is written before EXT-X-KEY, so the (clear) init section is not
            # read as encrypted (RFC 8216 4.3.2.5).
            init = Map(f"{seg_base}/{rendition.init_key}?s={_SEGMENT_SLOT}") if index == 0 else None
            segments.append(
                Segment(f"{seg_base}/{s.key}?s={_SEGMENT_SLOT}", s.duration_s, key=key, map=init)
            )
        playlist = MediaPlaylist(
            target_duration=rendition.target_duration_s,
            media_sequence=rendition.media_sequence,
            segments=tuple(segments),
        )
        return Template.split(render_media(playlist))

    def _multivariant(
        self, track: PublishedTrack, session: SessionClaims, first_pathway: str | None
    ) -> Template:
        record = track.record
        offered = [track.renditions[name] for name in session.variants]
        if first_pathway is None:
            variants = tuple(
                VariantStream(
                    uri=media_playlist_name(r.name),
                    bandwidth=r.bandwidth,
                    average_bandwidth=r.average_bandwidth,
                    codecs=r.codecs,
                    stable_variant_id=r.name,
                )
                for r in offered
            )
            steering = None
        else:
            # The first pathway's variants first: a player without steering support starts
            # on the first variant listed (RFC 8216 6.3.1) and may fail over to the others.
            first = self._pathways[first_pathway]
            pathways = (first, *(p for p in self._pathways.values() if p is not first))
            variants = tuple(
                VariantStream(
                    uri=f"{p.base_url}{play_path(_SESSION_SLOT)}/{media_playlist_name(r.name)}",
                    bandwidth=r.bandwidth,
                    average_bandwidth=r.average_bandwidth,
                    codecs=r.codecs,
                    pathway_id=p.id,
                    stable_variant_id=r.name,
                )
                for p in pathways
                for r in offered
            )
            steering = ContentSteering(
                f"{self._base}{steering_path(_SESSION_SLOT)}", pathway_id=first_pathway
            )
        key_ids: list[str] = []
        for rendition in offered:
            if rendition.segments and rendition.segments[0].key_id not in key_ids:
                key_ids.append(rendition.segments[0].key_id)
        loudness = record.loudness
        playlist = MultivariantPlaylist(
            variants=variants,
            session_keys=tuple(SessionKey(KEY_METHOD, self._key_uri(kid)) for kid in key_ids),
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
        return Template.split(render_multivariant(playlist))
