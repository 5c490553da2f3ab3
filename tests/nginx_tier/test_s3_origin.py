"""The tier as an origin shield over the S3 server of `scripts/services` (SigV4 from Lua)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from cdn_edge.nginx_tier import NginxTier, NginxTierConfig, S3Origin, start_nginx_tier
from streamer.objects.s3 import S3ObjectStore
from tests.backends.services import drop_bucket, fresh_bucket_name, s3_settings
from tests.nginx_tier.conftest import access_lines, free_port, request
from tests.nginx_tier.vectors import object_bytes, vector_secrets, vectors

pytestmark = pytest.mark.services  # needs `scripts/services up`

FREE = vectors()["tokens"]["free"]
TRACK = "tracks/USRC17607839/0123456789abcdef"


@pytest.fixture
def s3_tier(tmp_path: Path, echo_edge: str) -> Iterator[NginxTier]:
    settings = s3_settings(tmp_path, fresh_bucket_name())
    with ExitStack() as cleanup:
        store = S3ObjectStore.from_settings(settings)
        cleanup.callback(drop_bucket, store, settings)
        for key, size in vectors()["objects"].items():
            store.put(key, object_bytes(key, size), "video/iso.segment")
        config = NginxTierConfig(
            prefix=tmp_path / "nginx",
            edge_upstream=echo_edge,
            s3=S3Origin(
                endpoint=settings.s3_endpoint,
                bucket=settings.s3_bucket,
                access_key=settings.s3_access_key,
                secret_key=settings.s3_secret_key,
            ),
            listen_port=free_port(),
        )
        with start_nginx_tier(config, vector_secrets()) as tier:
            yield tier


def test_s3_origin_serves_signed_gets_and_caches_without_the_token(s3_tier: NginxTier) -> None:
    data = object_bytes(f"{TRACK}/aac_160/seg_00001.m4s", 118_321)
    path = f"/v1/s/{FREE}/aac_160/seg_00001.m4s"
    first = request(s3_tier, path)
    assert first.status == 200, first.body[:300]
    assert first.body == data
    assert first.headers["Content-Type"] == "audio/mp4"  # not S3's stored type
    assert first.headers["ETag"]
    part = request(s3_tier, path, headers={"Range": "bytes=10-19"})
    assert part.status == 206 and part.body == data[10:20]
    assert request(s3_tier, path, headers={"If-None-Match": first.headers["ETag"]}).status == 304
    # Another session's token reaches the same cached object.
    other = vectors()["tokens"]["premium"]
    assert request(s3_tier, f"/v1/s/{other}/aac_160/seg_00001.m4s").body == data
    missing = request(s3_tier, f"/v1/s/{FREE}/aac_160/seg_00099.m4s")
    assert missing.status == 404 and missing.json()["error"] == "not_found"
    assert request(s3_tier, f"/v1/s/{FREE}/aac_256/seg_00000.m4s").status == 403
    assert len(access_lines(s3_tier, 6)) == 6
    cached = list((s3_tier.config.cache_dir).rglob("*"))
    assert any(p.is_file() for p in cached)
