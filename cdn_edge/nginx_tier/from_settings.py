"""The nginx tier's config from the server's Settings: where `streamer serve` starts."""

from __future__ import annotations

from cdn_edge.nginx_tier.config import NginxTierConfig, S3Origin
from cdn_edge.nginx_tier.process import NginxTier, start_nginx_tier
from cdn_edge.telemetry.capture import default_server_id
from streamer.settings import Settings
from streamer.token_secrets import load_token_secrets

NGINX_DIR = "nginx"  # the prefix, under the data directory


def tier_config(
    settings: Settings,
    edge_upstream: str,
    *,
    listen_host: str | None = None,
    listen_port: int | None = None,
    worker_processes: int = 1,
) -> NginxTierConfig:
    """The tier in front of the edge at `edge_upstream`, on settings.host:port by default."""
    s3 = None
    objects_root = None
    if settings.object_store == "s3":
        s3 = S3Origin(
            endpoint=settings.s3_endpoint,
            bucket=settings.s3_bucket,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            secure=settings.s3_secure,
        )
    else:
        objects_root = (settings.data_dir / "objects").resolve()
    return NginxTierConfig(
        prefix=(settings.data_dir / NGINX_DIR).resolve(),
        edge_upstream=edge_upstream,
        objects_root=objects_root,
        s3=s3,
        listen_host=listen_host or settings.host,
        listen_port=listen_port or settings.port,
        worker_processes=worker_processes,
        server_id=default_server_id(),
        playlist_layout=f"ads-{settings.ad_slot_s}" if settings.ads else "plain",
        status_port=settings.nginx_status_port or None,
        pretouch_zones=settings.nginx_pretouch_zones,
    )


def start_nginx_tier_for_settings(
    settings: Settings,
    edge_upstream: str,
    *,
    listen_host: str | None = None,
    listen_port: int | None = None,
    worker_processes: int = 1,
    nginx: str = "nginx",
) -> NginxTier:
    """Start the tier for `settings` (blocks up to a few seconds: call it at startup)."""
    config = tier_config(
        settings,
        edge_upstream,
        listen_host=listen_host,
        listen_port=listen_port,
        worker_processes=worker_processes,
    )
    keys = (load_token_secrets(settings).playback_key,)
    return start_nginx_tier(config, keys, nginx=nginx)
