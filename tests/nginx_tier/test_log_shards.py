"""The access log written as shards: every request in exactly one file, a session's requests
all in the same one, requests without a session spread over all."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from cdn_edge.nginx_tier import NginxTierConfig, start_nginx_tier
from cdn_edge.nginx_tier.config import render_config
from cdn_edge.nginx_tier.errors import TierConfigInvalid
from tests.nginx_tier.conftest import request
from tests.nginx_tier.vectors import vector_secrets, vectors

FREE = vectors()["tokens"]["free"]
SEG = f"/v1/s/{FREE}/aac_160/seg_00001.m4s"
REFUSED = f"/v1/s/{FREE[:-4]}AAAA/aac_160/seg_00001.m4s"  # a tampered signature: 401
REQUESTS = 40


def test_one_shard_is_the_plain_access_log(tier_config: NginxTierConfig) -> None:
    assert tier_config.access_logs == (tier_config.access_log,)
    conf = render_config(tier_config)
    assert f"access_log {tier_config.access_log} streamer_json" in conf
    assert "split_clients" not in conf


def test_shards_are_named_after_the_log_and_bounded(tier_config: NginxTierConfig) -> None:
    logs = replace(tier_config, log_shards=3).access_logs
    assert [p.name for p in logs] == ["access.0.log", "access.1.log", "access.2.log"]
    conf = render_config(replace(tier_config, log_shards=3))
    assert "33.33% 0;" in conf and "33.33% 1;" in conf and "* 2;" in conf
    for shards in (0, 65):
        with pytest.raises(TierConfigInvalid):
            replace(tier_config, log_shards=shards)


def read_lines(paths: tuple[Path, ...], expect: int) -> list[list[dict[str, object]]]:
    for _ in range(250):
        shards = [
            [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else [] for p in paths
        ]
        if sum(map(len, shards)) >= expect:
            return shards
        time.sleep(0.02)
    return shards


def test_nginx_writes_each_request_to_exactly_one_shard(tier_config: NginxTierConfig) -> None:
    config = replace(tier_config, log_shards=2)
    with start_nginx_tier(config, vector_secrets()) as tier:
        assert {request(tier, SEG).status for _ in range(REQUESTS)} == {200}
        assert {request(tier, REFUSED).status for _ in range(REQUESTS)} == {401}
        tier.reopen_logs()  # workers flush their buffers
        shards = read_lines(config.access_logs, 2 * REQUESTS)
    ids = [line["request_id"] for shard in shards for line in shard]
    assert len(ids) == len(set(ids)) == 2 * REQUESTS
    # The session's lines all in one file (one shipper decides its play) ...
    with_session = [sum(1 for x in shard if x["session_id"]) for shard in shards]
    assert sorted(with_session) == [0, REQUESTS]
    # ... and the refused ones, without a session, spread by request id over both.
    refused = [sum(1 for x in shard if x["status"] == 401) for shard in shards]
    assert sum(refused) == REQUESTS and min(refused) >= REQUESTS // 5, refused
    assert not config.access_log.exists()
