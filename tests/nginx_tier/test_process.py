"""Starting and refusing to start: missing nginx, a rejected config, a taken port, bad fields."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import pytest

from cdn_edge.nginx_tier import (
    NginxExited,
    NginxNotInstalled,
    NginxTierConfig,
    S3Origin,
    TierConfigInvalid,
    render_config,
    start_nginx_tier,
)
from cdn_edge.nginx_tier.access_log_format import FIELD_NAMES, render_log_format
from cdn_edge.nginx_tier.config import render_gate_settings
from cdn_edge.playback.gate_keys import gate_credential
from tests.nginx_tier.vectors import vector_secrets


def test_a_missing_binary_says_how_to_install_it(tier_config: NginxTierConfig) -> None:
    with pytest.raises(NginxNotInstalled, match=r"\./dev setup"):
        start_nginx_tier(tier_config, vector_secrets(), nginx="nginx-not-installed-here")


def test_a_missing_module_says_how_to_install_it(tier_config: NginxTierConfig) -> None:
    config = replace(tier_config, lua_module=Path("/nonexistent/ngx_http_lua_module.so"))
    with pytest.raises(NginxNotInstalled, match=r"module .*lua.* \./dev setup"):
        start_nginx_tier(config, vector_secrets())


@pytest.mark.slow  # nginx retries the bind five times, 0.5 s apart
def test_a_taken_port_is_an_exit_with_nginx_words(tier_config: NginxTierConfig) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", tier_config.listen_port))
        taken.listen()
        with pytest.raises(NginxExited, match="Address already in use"):
            start_nginx_tier(tier_config, vector_secrets())


def test_config_fields_are_checked(tmp_path: Path) -> None:
    base = {"prefix": tmp_path, "edge_upstream": "127.0.0.1:8081", "objects_root": tmp_path}
    NginxTierConfig(**base)  # type: ignore[arg-type]
    for bad in (
        {"objects_root": None},
        {"prefix": Path("relative")},
        {"edge_upstream": "no-port"},
        {"listen_port": 0},
        {"worker_processes": 0},
        {"user": "root; evil"},
        {"server_id": 'a"b'},
        {"objects_root": tmp_path / "has space"},
    ):
        with pytest.raises(TierConfigInvalid):
            NginxTierConfig(**{**base, **bad})  # type: ignore[arg-type]
    s3 = S3Origin("127.0.0.1:9000", "streamer", access_key="AKID-x", secret_key="SK-secret")
    with pytest.raises(TierConfigInvalid, match="exactly one"):
        NginxTierConfig(**{**base, "s3": s3})  # type: ignore[arg-type]
    assert "AKID" not in repr(s3) and "SK-secret" not in repr(s3)


def test_no_secret_in_the_config_and_all_in_the_gate_settings(tmp_path: Path) -> None:
    s3 = S3Origin("127.0.0.1:9000", "streamer", access_key="AKTEST", secret_key="SKTEST-secret")
    config = NginxTierConfig(prefix=tmp_path, edge_upstream="127.0.0.1:8081", s3=s3)
    rendered = render_config(config)
    settings = render_gate_settings(config, vector_secrets())
    credential = gate_credential(vector_secrets()[0])
    for secret in ("SKTEST-secret", credential, *(key.hex() for key in vector_secrets())):
        assert secret not in rendered
        assert secret in settings
    assert "proxy_cache_key $streamer_object_path$slice_range;" in rendered


def test_log_format_has_every_field_once() -> None:
    line = render_log_format()
    for name in FIELD_NAMES:
        assert line.count(f'"{name}":') == 1
    assert "escape=json" in line
    assert "$request_uri" not in line and "$http_referer" not in line
