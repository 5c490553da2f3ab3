"""Negotiation tables: tier, device codecs and network to the offered variants, start first."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdn_edge.policy.negotiation import (
    DeviceCapabilities,
    Offer,
    bitrate_cap_kbps,
    choose_variants,
    is_entitled,
    parse_codec,
)
from transcoder.ladder import DEFAULT_LADDER

LADDER = tuple(Offer(s.name, s.codec, s.bitrate_kbps, s.tier) for s in DEFAULT_LADDER)
AAC = frozenset({"aac"})
AAC_OPUS = frozenset({"aac", "opus"})
ALL = frozenset({"aac", "opus", "flac"})


def device(codecs=ALL, **kw) -> DeviceCapabilities:
    return DeviceCapabilities(frozenset(codecs), **kw)


@pytest.mark.parametrize(
    ("tier", "dev", "expected"),
    [
        # Free tier: lossy up to 160 kbit/s; only the codecs listed, Opus preferred; AAC only
        # for a device that lists no codec known here.
        ("free", device(ALL), ("opus_160", "opus_96", "opus_32", "aac_160", "aac_96")),
        ("free", device(AAC_OPUS), ("opus_160", "opus_96", "opus_32", "aac_160", "aac_96")),
        ("free", device(AAC), ("aac_160", "aac_96")),
        ("free", device({"opus"}), ("opus_160", "opus_96", "opus_32")),
        ("free", device(set()), ("aac_160", "aac_96")),
        # Premium: everything the device decodes, 256 kbit/s AAC and FLAC included.
        (
            "premium",
            device(ALL),
            ("opus_160", "opus_96", "opus_32", "aac_256", "aac_160", "aac_96", "flac"),
        ),
        ("premium", device(AAC), ("aac_256", "aac_160", "aac_96")),
        ("premium", device({"aac", "flac"}), ("aac_256", "aac_160", "aac_96", "flac")),
        # Cellular or save-data: capped at 96 kbit/s.
        ("free", device(ALL, network="cellular"), ("opus_96", "opus_32", "aac_96")),
        ("premium", device(ALL, network="cellular"), ("opus_96", "opus_32", "aac_96")),
        ("premium", device(AAC, save_data=True), ("aac_96",)),
        ("free", device(ALL, network="wifi", save_data=True), ("opus_96", "opus_32", "aac_96")),
        # ... unless the device asks otherwise, up or down.
        (
            "premium",
            device(ALL, network="cellular", max_bitrate_kbps=256),
            ("opus_160", "opus_96", "opus_32", "aac_256", "aac_160", "aac_96"),
        ),
        (
            "free",
            device(ALL, network="cellular", max_bitrate_kbps=320),
            (
                "opus_160",
                "opus_96",
                "opus_32",
                "aac_160",
                "aac_96",
            ),
        ),
        (
            "premium",
            device(ALL, max_bitrate_kbps=2000),
            (
                "opus_160",
                "opus_96",
                "opus_32",
                "aac_256",
                "aac_160",
                "aac_96",
                "flac",
            ),
        ),
        # Below a cap, only what fits; below every lossy variant, the lowest of the preferred
        # codec stays.
        ("free", device(ALL, max_bitrate_kbps=40), ("opus_32",)),
        ("free", device(AAC, max_bitrate_kbps=8), ("aac_96",)),
        ("free", device(AAC_OPUS, max_bitrate_kbps=8), ("opus_32",)),
        ("premium", device({"opus"}, network="cellular"), ("opus_96", "opus_32")),
        # A device that decodes FLAC alone gets it even on cellular: it can play nothing else.
        ("premium", device({"flac"}, network="cellular"), ("flac",)),
    ],
)
def test_choose_variants(tier, dev, expected) -> None:
    assert choose_variants(tier, dev, LADDER) == expected


def test_start_variant_is_first_and_lossy() -> None:
    # FLAC sorts last even when it is the best the device can do.
    chosen = choose_variants("premium", device({"aac", "flac"}), LADDER)
    assert chosen[0] == "aac_256"
    assert chosen[-1] == "flac"
    # A device that decodes FLAC alone gets FLAC alone.
    assert choose_variants("premium", device({"flac"}), LADDER) == ("flac",)


def test_nothing_playable_is_empty() -> None:
    opus_only = tuple(o for o in LADDER if o.codec == "opus")
    assert choose_variants("free", device(AAC), opus_only) == ()
    # An Opus-only device is not handed AAC when the track has no Opus: it could not play it.
    aac_only = tuple(o for o in LADDER if o.codec == "aac")
    assert choose_variants("free", device({"opus"}), aac_only) == ()
    assert choose_variants("free", device({"flac"}), LADDER) == ()  # FLAC is premium


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("mp4a.40.2", "aac"),
        ("mp4a.40.5", "aac"),
        ("AAC", "aac"),
        ("opus", "opus"),
        ("Opus", "opus"),
        ("fLaC", "flac"),
        ("flac", "flac"),
        ("mp3", None),
        ("avc1.64001f", None),
    ],
)
def test_parse_codec(name: str, family: str | None) -> None:
    assert parse_codec(name) == family


@pytest.mark.parametrize(
    ("dev", "cap"),
    [
        (device(), None),
        (device(network="wifi"), None),
        (device(network="cellular"), 96),
        (device(save_data=True), 96),
        (device(network="cellular", max_bitrate_kbps=320), 320),
        (device(max_bitrate_kbps=64), 64),
    ],
)
def test_bitrate_cap(dev: DeviceCapabilities, cap: int | None) -> None:
    assert bitrate_cap_kbps(dev) == cap


def test_entitlement_table() -> None:
    free = {o.name for o in LADDER if is_entitled(o, "free")}
    premium = {o.name for o in LADDER if is_entitled(o, "premium")}
    assert free == {"aac_96", "aac_160", "opus_32", "opus_96", "opus_160"}
    assert premium == {o.name for o in LADDER}


def test_device_rejects_nonpositive_cap() -> None:
    with pytest.raises(ValueError, match="max_bitrate_kbps"):
        device(max_bitrate_kbps=0)


devices = st.builds(
    DeviceCapabilities,
    codecs=st.frozensets(st.sampled_from(["aac", "opus", "flac"])),
    max_bitrate_kbps=st.none() | st.integers(1, 3000),
    network=st.none() | st.sampled_from(["wifi", "cellular"]),
    save_data=st.booleans(),
)


@given(devices)
def test_properties(dev: DeviceCapabilities) -> None:
    free = choose_variants("free", dev, LADDER)
    premium = choose_variants("premium", dev, LADDER)
    for tier, chosen in (("free", free), ("premium", premium)):
        offers = [o for o in LADDER if o.name in chosen]
        assert all(is_entitled(o, tier) for o in offers)  # type: ignore[arg-type]
        # Only codecs the device listed; AAC alone for a device that listed none.
        assert {o.codec for o in offers} <= (dev.codecs or {"aac"})
        assert len(set(chosen)) == len(chosen)
        if any(o.bitrate_kbps is not None for o in offers):
            assert next(o for o in LADDER if o.name == chosen[0]).bitrate_kbps is not None
        lossy_codecs = dev.codecs - {"flac"} if dev.codecs else {"aac"}
        if lossy_codecs:
            assert any(o.bitrate_kbps is not None for o in offers)  # never capped to nothing
        elif tier == "premium":
            assert chosen == ("flac",)
    # Paying never takes a variant away.
    assert set(free) <= set(premium)


@given(devices, st.integers(1, 3000), st.integers(1, 3000))
def test_raising_the_cap_never_removes_lossy_variants_above_the_fallback(
    dev: DeviceCapabilities, a: int, b: int
) -> None:
    low, high = sorted((a, b))
    lower = choose_variants("premium", DeviceCapabilities(dev.codecs, low), LADDER)
    higher = choose_variants("premium", DeviceCapabilities(dev.codecs, high), LADDER)
    assert set(lower) <= set(higher)
