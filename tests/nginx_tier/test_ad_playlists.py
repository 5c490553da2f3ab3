"""The nginx tier keeps a media playlist per tier: free bodies carry ad breaks (cdn_edge.ads)."""

from __future__ import annotations

from pathlib import Path

from cdn_edge.nginx_tier import NginxTier
from cdn_edge.nginx_tier.config import render_config
from cdn_edge.nginx_tier.from_settings import tier_config
from streamer.settings import Settings
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


def test_the_playlist_cache_key_names_the_layout_so_turning_ads_off_never_serves_breaks(
    tmp_path: Path,
) -> None:
    # nginx's playlist cache outlives a restart: bodies with breaks must not answer once ads
    # are off (or their slot changed), so the key carries what the bodies hold.
    keys = set()
    for ads, slot in ((True, 60), (True, 30), (False, 60)):
        settings = Settings(data_dir=tmp_path, ads=ads, ad_slot_s=slot)
        rendered = render_config(tier_config(settings, "127.0.0.1:8081"))
        [key] = [
            line.strip()
            for line in rendered.splitlines()
            if "$streamer_tier" in line and "proxy_cache_key" in line
        ]
        keys.add(key)
    assert keys == {
        'proxy_cache_key "$streamer_object_path $streamer_tier $streamer_gzip ads-60";',
        'proxy_cache_key "$streamer_object_path $streamer_tier $streamer_gzip ads-30";',
        'proxy_cache_key "$streamer_object_path $streamer_tier $streamer_gzip plain";',
    }
