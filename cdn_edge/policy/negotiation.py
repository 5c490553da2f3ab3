"""Which renditions a session is offered, and which one it starts on: pure policy.

- Entitlement: the free tier gets lossy renditions up to 160 kbit/s; premium gets everything,
  256 kbit/s AAC and FLAC included.
- Network: on cellular or with save-data the offer is capped at 96 kbit/s, unless the device
  names its own `max_bitrate_kbps`, which then is the cap, up or down.
- Codecs: only what the device lists. A device that lists Opus alone gets no AAC: a player
  offered a variant it cannot decode may still pick it (hls.js picks among codecs itself). Only
  a device that lists no codec we know gets AAC-LC, the codec every HLS player decodes (Apple's
  HLS authoring specification requires it of clients). Below a tight cap, the lowest lossy
  variant of the preferred codec stays (FLAC, for a device that decodes nothing else), so
  there is always something to play.
- Order: the start variant first (RFC 8216 section 6.3.1 lets clients start on the first
  variant listed), then the rest of the preferred codec, the other lossy codecs, and lossless
  last, each by falling bitrate.
- Start: always lossy and of the preferred codec. Without a measurement, its best bitrate
  within the cap. With the listener's recently measured throughput, the highest variant whose
  peak BANDWIDTH fits within START_THROUGHPUT_FRACTION of it, or the lowest when none fits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from streamer.catalog import Codec, RenditionRecord, Tier

Network = Literal["wifi", "cellular"]

TIER_RANK: dict[Tier, int] = {"free": 0, "premium": 1}
FREE_TIER_MAX_KBPS = 160  # the free tier's quality ceiling (transcoder.ladder.FREE_TIER_MAX_KBPS)
CONSTRAINED_MAX_KBPS = 96  # cellular or save-data: about 43 MB an hour
LOSSLESS_NOMINAL_KBPS = 1411  # CD audio; what a cap is compared with for FLAC
CODEC_PREFERENCE: tuple[Codec, ...] = ("opus", "aac", "flac")  # Opus: better quality per bit
BASELINE_CODECS: frozenset[Codec] = frozenset({"aac"})  # for devices that list no known codec
# Start no higher than 70 % of the measured throughput: the same margin hls.js keeps before
# switching up (abrBandWidthUpFactor 0.7). It absorbs the estimate's spread and the playlist
# and key fetches of the first seconds, so the first segment arrives before the buffer runs dry.
START_THROUGHPUT_FRACTION = 0.7

# RFC 6381 CODECS strings and plain names, as devices send them, to codec families.
_CODEC_ALIASES: dict[str, Codec] = {
    "aac": "aac",
    "mp4a": "aac",
    "opus": "opus",
    "flac": "flac",
}


def parse_codec(name: str) -> Codec | None:
    """The codec family of a device's codec string ("mp4a.40.2", "opus", "fLaC"), else None."""
    return _CODEC_ALIASES.get(name.strip().lower().split(".", 1)[0])


@dataclass(frozen=True)
class DeviceCapabilities:
    """What the player says about itself when it opens a session."""

    codecs: frozenset[Codec]
    max_bitrate_kbps: int | None = None
    network: Network | None = None
    save_data: bool = False

    def __post_init__(self) -> None:
        if self.max_bitrate_kbps is not None and self.max_bitrate_kbps < 1:
            raise ValueError(f"max_bitrate_kbps must be at least 1, got {self.max_bitrate_kbps}")


@dataclass(frozen=True)
class Listener:
    """Who plays, as the verified listener token says."""

    user_id: str
    tier: Tier
    region: str


@dataclass(frozen=True)
class Offer:
    """A published rendition as negotiation sees it."""

    name: str
    codec: Codec
    bitrate_kbps: int | None  # None: lossless
    tier: Tier
    bandwidth_bps: int | None = None  # the measured peak (BANDWIDTH), when published

    @property
    def nominal_kbps(self) -> int:
        return LOSSLESS_NOMINAL_KBPS if self.bitrate_kbps is None else self.bitrate_kbps

    @property
    def peak_bps(self) -> int:
        """BANDWIDTH as the playlist states it, else the nominal bitrate."""
        return self.nominal_kbps * 1000 if self.bandwidth_bps is None else self.bandwidth_bps


def offers_from_renditions(renditions: Iterable[RenditionRecord]) -> tuple[Offer, ...]:
    return tuple(Offer(r.name, r.codec, r.bitrate_kbps, r.tier, r.bandwidth) for r in renditions)


def is_entitled(offer: Offer, tier: Tier) -> bool:
    """Whether `tier` may play `offer` at all, whatever the device."""
    if TIER_RANK[offer.tier] > TIER_RANK[tier]:
        return False
    if tier == "free":
        return offer.bitrate_kbps is not None and offer.bitrate_kbps <= FREE_TIER_MAX_KBPS
    return True


def bitrate_cap_kbps(device: DeviceCapabilities) -> int | None:
    """The highest nominal bitrate to offer, or None for no cap."""
    if device.max_bitrate_kbps is not None:
        return device.max_bitrate_kbps
    if device.network == "cellular" or device.save_data:
        return CONSTRAINED_MAX_KBPS
    return None


def _order_key(offer: Offer) -> tuple[int, int]:
    return CODEC_PREFERENCE.index(offer.codec), -offer.nominal_kbps


def start_offer(candidates: Sequence[Offer], measured_kbps: int | None) -> Offer:
    """The start among `candidates` (one codec, by falling bitrate; not empty)."""
    if measured_kbps is None:
        return candidates[0]
    budget_bps = measured_kbps * 1000 * START_THROUGHPUT_FRACTION
    fitting = [o for o in candidates if o.peak_bps <= budget_bps]
    return fitting[0] if fitting else candidates[-1]


def decodable_codecs(device: DeviceCapabilities) -> frozenset[Codec]:
    """The codecs to offer the device: those it lists, or AAC when it lists none we know."""
    return device.codecs or BASELINE_CODECS


def choose_variants(
    tier: Tier,
    device: DeviceCapabilities,
    offers: Sequence[Offer],
    measured_kbps: int | None = None,
) -> tuple[str, ...]:
    """Names of the renditions to offer, start variant first; empty if nothing fits.

    `measured_kbps` is the listener's recent throughput, when known (see the module docstring).
    """
    codecs = decodable_codecs(device)
    playable = sorted(
        (o for o in offers if is_entitled(o, tier) and o.codec in codecs), key=_order_key
    )
    cap = bitrate_cap_kbps(device)
    chosen = [o for o in playable if cap is None or o.nominal_kbps <= cap]
    playable_lossy = [o for o in playable if o.bitrate_kbps is not None]
    if playable_lossy and not any(o.bitrate_kbps is not None for o in chosen):
        # Never capped to nothing lossy: the lowest of the preferred codec stays.
        preferred = [o for o in playable_lossy if o.codec == playable_lossy[0].codec]
        chosen.append(preferred[-1])
    elif playable and not chosen:
        chosen.append(playable[-1])  # a device that decodes FLAC alone, under a cap
    if not chosen:
        return ()
    chosen.sort(key=_order_key)
    lossy = [o for o in chosen if o.bitrate_kbps is not None]
    if lossy:
        start = start_offer([o for o in lossy if o.codec == lossy[0].codec], measured_kbps)
    else:
        start = chosen[0]
    return (start.name, *(o.name for o in chosen if o is not start))
