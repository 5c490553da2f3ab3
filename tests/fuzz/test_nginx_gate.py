"""The nginx tier's gate (cdn_edge/nginx_tier/streamer_tier.lua) in front of the edge: the
session paths nginx answers itself, with edited tokens, names and escapes, and the headers a
player sends. Never a 5xx (a gate that throws fails closed as a 500), every refusal JSON with a
reason."""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz.counting import SCALES, budget, tried
from tests.fuzz.strategies import HEADER_TEXT
from tests.security.world import World

# Well-formed request targets only: nginx answers a bad escape ("%yJ") or an escaped NUL with
# its own HTML 400 before any location runs (docs/reliability.md).
_TOKEN_CHARS = st.sampled_from(
    ["A", "b", "0", "-", "_", ".", "=", "+", "/", "~", "%2e", "%2F", "%5c", "%25", "%20"]
)

_PIECES = st.lists(_TOKEN_CHARS, max_size=6).map("".join)


@st.composite
def gate_requests(draw: st.DrawFn, token: str, renditions: list[str]) -> tuple[str, list]:
    """A path under /v1/s/ with the token, rendition and file each kept, edited or replaced."""
    if draw(st.booleans()):
        at = draw(st.integers(0, len(token)))
        token = token[:at] + draw(_PIECES) + token[at + 1 :]
    text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
    part = text.map(lambda t: quote(t, safe="")) | _PIECES
    rendition = draw(st.sampled_from(renditions) | part)
    file = draw(
        st.sampled_from(["init.mp4", "seg_00000.m4s", "seg_00003.m4s", "seg_99999.m4s",
                         "playlist.m3u8", "seg_0.m4s", "seg_000001.m4s"]) | part
    )  # fmt: skip
    path = f"/v1/s/{token}/{rendition}/{file}"
    if draw(st.booleans()):
        path += "?CMCD=" + quote(draw(st.text(max_size=30)), safe="")
    headers = []
    for name in draw(
        st.lists(
            st.sampled_from(
                ["Range", "If-None-Match", "Accept-Encoding", "CMCD-Object", "X-Request-Id"]
            ),
            unique=True,
        )
    ):
        value = draw(HEADER_TEXT | st.sampled_from(["bytes=0-10", "bytes=-5", "gzip", "*"]))
        headers.append((name, value.strip()))
    return path, headers


@pytest.mark.parametrize("scale", SCALES)
def test_gate_paths(tier_world: World, scale: int) -> None:
    assert tier_world.nginx is not None
    nginx = tier_world.nginx
    token, _ = tier_world.open_session(nginx, tier_world.tracks["A"].track_id, "free")
    renditions = list(tier_world.tracks["A"].renditions)
    statuses: Counter[int] = Counter()

    @budget(200, scale)
    @given(st.sampled_from(["GET", "HEAD"]), gate_requests(token, renditions))
    def check(method: str, request: tuple[str, list]) -> None:
        path, headers = request
        tried("nginx gate: session paths")
        reply = nginx.request(method, path, headers)
        statuses[reply.status] += 1
        assert 0 < reply.status < 500, (path, reply.status, reply.body[:300])
        if 400 <= reply.status < 500 and method == "GET" and reply.status != 416:
            body = json.loads(reply.body)
            assert body["error"] and body["message"], body

    check()
    print(f"\nstatuses: {dict(sorted(statuses.items()))}")
