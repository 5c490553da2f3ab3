"""The nginx tier keeps a media playlist per tier: free bodies carry ad breaks (cdn_edge.ads)."""

from __future__ import annotations

from cdn_edge.nginx_tier import NginxTier
from tests.nginx_tier.conftest import request
from tests.nginx_tier.vectors import vectors

FREE = vectors()["tokens"]["free"]
PREMIUM = vectors()["tokens"]["premium"]


def test_a_free_token_never_gets_the_premium_body_from_the_cache(tier: NginxTier) -> None:
    # The stand-in edge echoes the path it was asked, so a body says whose render it is.
    premium = request(tier, f"/v1/s/{PREMIUM}/aac_160/playlist.m3u8")
    free = request(tier, f"/v1/s/{FREE}/aac_160/playlist.m3u8")
    assert premium.status == free.status == 200
    assert PREMIUM in premium.json()["path"]
    # Cached per tier: the free listener's body was rendered for a free token (with its
    # breaks), not served from the premium one already in the cache.
    assert FREE in free.json()["path"]
    again = request(tier, f"/v1/s/{FREE}/aac_160/playlist.m3u8")
    assert again.body == free.body  # and cached, like every media playlist
