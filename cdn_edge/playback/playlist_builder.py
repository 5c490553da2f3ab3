"""Session playlists: rendered once per published version, the same bytes for every session.

Every playlist lives under its session's path, "/v1/s/{session token}/", and names what it
refers to relatively, so the bodies carry no token: a media playlist is rendered and gzipped
once per (version, rendition) and served after one token check, and so is a multivariant
playlist without steering, once per (version, variant set).

    /v1/s/{token}/main.m3u8                  multivariant
    /v1/s/{token}/{rendition}/playlist.m3u8  media playlist
    /v1/s/{token}/{rendition}/{file}         init section (init.mp4) or segment (seg_NNNNN.m4s),
                                             served by nginx (cdn_edge.nginx_tier) or the edge
    /v1/s/{token}/keys/{key id}              content key (cdn_edge.handlers.keys)

    multivariant   only the session's variants, CODECS, BANDWIDTH, AVERAGE-BANDWIDTH,
                   EXT-X-SESSION-KEY (the first key of each variant, for prefetch, 4.3.4.5),
                   EXT-X-SESSION-DATA with the loudness gain (4.3.4.4); with CDN pathways
                   configured, EXT-X-CONTENT-STEERING (rfc8216bis 4.4.6.6) and every variant
                   once per pathway, PATHWAY-ID and STABLE-VARIANT-ID set, its URI absolute
                   on that pathway's base URL under the session's path, the session's first
                   pathway listed first (these carry the token: filled in per request)
    media          EXT-X-MEDIA-SEQUENCE, EXT-X-MAP, then EXT-X-KEY (AES-128) wherever the key
                   changes, its IV implied by each segment's Media Sequence Number (or, for
                   tracks published with random IVs, on every segment); segment URIs are the
                   file names ("seg_00000.m4s"), key URIs "../keys/{key id}"

One key therefore has one URI in every media playlist of a session on a host, so players that
cache keys by URI fetch it once (see `cdn_edge.policy.key_budget`). Relative URIs resolve to
whichever host served the playlist: on a CDN pathway, segments come from that CDN, which caches them
with the token left out of its cache key, and keys pass through it uncached (no-store).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from cdn_edge.ads.interstitials import with_breaks
from cdn_edge.errors import NotEntitled, NotFound
from cdn_edge.playback.catalog_cache import PublishedTrack
from cdn_edge.playback.tokens import SessionClaims
from cdn_edge.policy.negotiation import Offer, is_entitled
from cdn_edge.steering.pathways import Pathway
from cdn_edge.web.compression import MIN_GZIP_BYTES, gzip_bytes
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
MAX_TEMPLATES = 4096  # bodies and templates kept; a few KB each, gzipped copy included
MULTIVARIANT_NAME = "main"
MEDIA_PLAYLIST_FILE = "playlist.m3u8"
KEYS_DIR = "keys"  # no rendition is named so (the ladder's names are codec_bitrate or flac)
# Cached bodies are compressed once, so the best ratio costs nothing per request.
CACHED_GZIP_LEVEL = 9

# Placeholders cannot occur in real URIs: '~' is outside every name and token the edge
# accepts, and pathway base URLs are refused with one (see cdn_edge.steering.pathways).
_SESSION_SLOT = "~t~"
_Cached = TypeVar("_Cached", "Template", "PlaylistBody")
_PLACEHOLDER = re.compile(r"~t~")


def media_playlist_uri(rendition: str) -> str:
    """A media playlist relative to the session's directory."""
    return f"{rendition}/{MEDIA_PLAYLIST_FILE}"


def session_path(session_token: str) -> str:
    """The directory of a session's playlists, keys and segments, below a base URL."""
    return f"/v1/s/{session_token}"


def steering_path(session_token: str) -> str:
    return f"/v1/steer/{session_token}"


@dataclass(frozen=True)
class Template:
    """Rendered playlist text split where the session token goes."""

    pieces: tuple[str, ...]  # literal text around the token; one more than its occurrences

    @classmethod
    def split(cls, text: str) -> Template:
        return cls(tuple(_PLACEHOLDER.split(text)))

    def fill(self, session_token: str) -> str:
        return session_token.join(self.pieces)


@dataclass(frozen=True)
class PlaylistBody:
    """A playlist the same for every session, as sent: plain and gzipped."""

    plain: bytes
    gzipped: bytes | None  # None when too small to gain from it

    @classmethod
    def of(cls, text: str) -> PlaylistBody:
        plain = text.encode()
        small = len(plain) < MIN_GZIP_BYTES
        return cls(plain, None if small else gzip_bytes(plain, CACHED_GZIP_LEVEL))


def _cached(
    cache: OrderedDict[tuple[str, ...], _Cached], key: tuple[str, ...], build: Callable[[], _Cached]
) -> _Cached:
    """`cache[key]`, built on a miss; the least recently used goes past MAX_TEMPLATES."""
    value = cache.get(key)
    if value is None:
        value = cache[key] = build()
        if len(cache) > MAX_TEMPLATES:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return value


class PlaylistBuilder:
    """Renders session playlists from published tracks, bodies and templates cached."""

    def __init__(
        self, base_url: str, pathways: tuple[Pathway, ...] = (), ad_slot_s: int | None = None
    ) -> None:
        """`pathways`: where variants may be fetched; steering is on with two or more.
        `ad_slot_s`: free sessions' media playlists carry ad breaks this far apart
        (cdn_edge.ads.interstitials); None: no ads."""
        self._base = base_url.rstrip("/")
        self._ad_slot_s = ad_slot_s
        self._pathways = {p.id: p for p in pathways}
        self._bodies: OrderedDict[tuple[str, ...], PlaylistBody] = OrderedDict()
        self._templates: OrderedDict[tuple[str, ...], Template] = OrderedDict()

    @property
    def steered(self) -> bool:
        """Whether multivariant playlists carry EXT-X-CONTENT-STEERING."""
        return len(self._pathways) > 1

    # Requests

    def multivariant(self, track: PublishedTrack, session: SessionClaims) -> PlaylistBody:
        """Without steering: the session's variants, relative to its directory."""
        if self.steered:
            raise ValueError("with pathways, multivariant playlists name the session's token")
        return _cached(
            self._bodies,
            ("mv", track.prefix, *session.variants),
            lambda: PlaylistBody.of(self._multivariant(track, session, None)),
        )

    def steered_multivariant(
        self, track: PublishedTrack, session: SessionClaims, session_token: str, first_pathway: str
    ) -> str:
        """With steering: every variant on every pathway, `first_pathway` first."""
        if first_pathway not in self._pathways:
            raise ValueError(
                f"a steered multivariant playlist needs one of the pathways "
                f"{sorted(self._pathways)} to start on, got {first_pathway!r}"
            )
        template = _cached(
            self._templates,
            ("mvs", track.prefix, first_pathway, *session.variants),
            lambda: Template.split(self._multivariant(track, session, first_pathway)),
        )
        return template.fill(session_token)

    def media(
        self, track: PublishedTrack, session: SessionClaims, rendition_name: str
    ) -> PlaylistBody:
        """Raises NotFound for a rendition not offered, NotEntitled above the session's tier."""
        rendition = self.check_offered(track, session, rendition_name)
        slot_s = self._ad_slot_s
        if session.tier == "free" and slot_s is not None:
            # The same body for every free session: breaks, never a decision (the asset list).
            return _cached(
                self._bodies,
                ("ma", track.prefix, rendition.name),
                lambda: PlaylistBody.of(self._media(rendition, slot_s)),
            )
        return _cached(
            self._bodies,
            ("m", track.prefix, rendition.name),
            lambda: PlaylistBody.of(self._media(rendition)),
        )

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

    @staticmethod
    def _media(rendition: RenditionRecord, ad_slot_s: int | None = None) -> str:
        prefix = f"{rendition.name}/"
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
                key = Key(KEY_METHOD, f"../{KEYS_DIR}/{s.key_id}", iv)
                previous = (s.key_id, iv)
            # EXT-X-MAP is written before EXT-X-KEY, so the (clear) init section is not
            # read as encrypted (RFC 8216 4.3.2.5).
            init = Map(rendition.init_key.removeprefix(prefix)) if index == 0 else None
            segments.append(Segment(s.key.removeprefix(prefix), s.duration_s, key=key, map=init))
        playlist = MediaPlaylist(
            target_duration=rendition.target_duration_s,
            media_sequence=rendition.media_sequence,
            segments=tuple(segments)
            if ad_slot_s is None
            else with_breaks(tuple(segments), ad_slot_s),
        )
        return render_media(playlist)

    def _multivariant(
        self, track: PublishedTrack, session: SessionClaims, first_pathway: str | None
    ) -> str:
        record = track.record
        offered = [track.renditions[name] for name in session.variants]
        if first_pathway is None:
            variants = tuple(
                VariantStream(
                    uri=media_playlist_uri(r.name),
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
                    uri=f"{p.base_url}{session_path(_SESSION_SLOT)}/{media_playlist_uri(r.name)}",
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
            session_keys=tuple(SessionKey(KEY_METHOD, f"{KEYS_DIR}/{kid}") for kid in key_ids),
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
        return render_multivariant(playlist)
