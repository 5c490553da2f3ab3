"""CMSD (CTA-5006) formatting: what the edge writes parses back, with http-sf, to what it meant."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdn_edge.telemetry.cmsd import (
    CmsdDynamic,
    CmsdStatic,
    max_suggested_bitrate,
    render_cmsd_dynamic,
    render_cmsd_static,
)
from tests.telemetry.cmsd_headers import parse_cmsd_dynamic, parse_cmsd_static


def test_static_for_a_media_segment() -> None:
    text = render_cmsd_static(CmsdStatic(ot="a", d=6000, br=160))
    assert text == "ot=a,sf=h,st=v,d=6000,br=160"
    assert parse_cmsd_static(text) == CmsdStatic(ot="a", d=6000, br=160)


def test_static_for_an_init_section() -> None:
    assert render_cmsd_static(CmsdStatic(ot="i")) == "ot=i,sf=h,st=v"


def test_dynamic_entry() -> None:
    entry = CmsdDynamic("edge-1", etp=5400, mb=160, rd=3, rtt=12)
    text = render_cmsd_dynamic((entry,))
    assert text == '"edge-1";etp=5400;mb=160;rd=3;rtt=12'
    assert parse_cmsd_dynamic(text) == (entry,)


def test_dynamic_duress_and_several_servers() -> None:
    entries = (CmsdDynamic("CDNB-3ak1", etp=96, rtt=8), CmsdDynamic("edge", mb=96, du=True))
    text = render_cmsd_dynamic(entries)
    assert text == '"CDNB-3ak1";etp=96;rtt=8, "edge";mb=96;du'
    assert parse_cmsd_dynamic(text) == entries


def test_models_validate() -> None:
    with pytest.raises(ValueError, match="ot"):
        CmsdStatic(ot="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="etp"):
        CmsdDynamic("edge", etp=-1)
    with pytest.raises(ValueError, match="server"):
        CmsdDynamic("edge\n")


@pytest.mark.parametrize(
    ("tier", "congestion", "mb"),
    [
        ("free", None, 160),  # the free tier's ceiling
        ("free", 96, 96),  # congestion below it wins
        ("free", 320, 160),
        ("premium", None, None),  # nothing to suggest
        ("premium", 256, 256),
    ],
)
def test_max_suggested_bitrate(tier: str, congestion: int | None, mb: int | None) -> None:
    assert max_suggested_bitrate(tier, congestion) == mb  # type: ignore[arg-type]


_INT = st.none() | st.integers(0, 10**12)
statics = st.builds(
    CmsdStatic,
    ot=st.none() | st.sampled_from(["m", "a", "v", "av", "i", "c", "tt", "k", "o"]),
    sf=st.none() | st.sampled_from(["d", "h", "s", "o"]),
    st=st.none() | st.sampled_from(["v", "l"]),
    d=_INT,
    br=_INT,
)
dynamics = st.builds(
    CmsdDynamic,
    server=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1),
    etp=_INT,
    mb=_INT,
    rd=_INT,
    rtt=_INT,
    du=st.booleans(),
)


@given(statics)
def test_static_round_trips(static: CmsdStatic) -> None:
    assert parse_cmsd_static(render_cmsd_static(static)) == static


@given(st.lists(dynamics, min_size=1, max_size=4))
def test_dynamic_round_trips(entries: list[CmsdDynamic]) -> None:
    assert parse_cmsd_dynamic(render_cmsd_dynamic(tuple(entries))) == tuple(entries)
