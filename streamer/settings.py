"""Settings: one frozen dataclass, built once from an optional TOML file and `STREAMER_*`.

Precedence: environment over file over defaults. Nothing here runs at import time; the CLI
calls `load_settings()` once and passes the result down.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, get_type_hints

from streamer.errors import ConfigError

ENV_PREFIX = "STREAMER_"

DEFAULT_MAX_MASTER_DURATION_S = 4 * 3600.0  # four hours: long mixes and audiobooks chapters
DEFAULT_MAX_UPLOAD_BYTES = 4 * 1024**3  # a 4 h 192 kHz/24-bit stereo WAV is about 16 GB; FLAC less
DEFAULT_SEGMENT_CACHE_BYTES = 256 * 1024**2
SEGMENTS_MODES = ("auto", "nginx", "python")
DEFAULT_CQL_RECONNECT_MAX_S = 10.0  # a node back up is written to again within seconds
MIN_CQL_RECONNECT_S = 1.0  # the driver's first retry waits 0.5 s (streamer.cql.connection)
MAX_CQL_RECONNECT_S = 600.0  # the driver's own default cap: an edge would spool for 10 min
MAX_NICE = 19  # nice(1): 19 is the lowest CPU priority


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("data")
    object_store: str = "local"  # "local" | "s3"
    job_store: str = "sqlite"  # "sqlite" | "scylla"
    session_store: str = "sqlite"  # "sqlite" | "scylla"

    # Ingest
    max_master_duration_s: float = DEFAULT_MAX_MASTER_DURATION_S
    reject_silent: bool = True
    segment_target_s: int = 6
    key_rotation_segments: int = 10
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    ffmpeg_timeout_factor: float = 2.0  # deadline = 60 s + duration * factor; realtime is plenty
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    # `streamer serve --ingest` (or serve_ingest = true) adds the ingest API to the edge, with
    # this many in-process workers; without it an edge only serves, and ingest runs on
    # `streamer worker` machines.
    serve_ingest: bool = False
    serve_ingest_workers: int = 1

    # Secrets. Empty means "development: generate one under data_dir/secrets on first use".
    kek_file: str = ""
    token_secret: str = ""
    # How far below serving the shipper runs under `streamer serve` (nice(1) steps, 0-19): on
    # a saturated machine nginx keeps the CPU and the shipper lags, then catches up (the log is
    # durable; benchmarks/README.md, "The shipper's limit").
    shipper_nice: int = 10
    # Token secrets retired by rotation, oldest first, comma-separated: `streamer audit verify`
    # checks the audit entries hashed under them (nothing else accepts them).
    previous_token_secrets: str = ""

    # Edge
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""  # e.g. "https://edge.example.com"; default http://host:port
    # Who serves segments under `streamer serve`: "nginx" (the tier in cdn_edge/nginx_tier in
    # front of the edge), "python" (the edge alone) or "auto" (nginx when it and its Lua module are
    # installed). See cdn_edge/delivery_tier.
    segments: str = "auto"
    # With the nginx tier: a loopback port answering /_streamer/status (each nginx worker's Lua
    # heap, the gate's zones' free space; cdn_edge/nginx_tier/config.py); 0, the default: none.
    nginx_status_port: int = 0
    # Fault the gate's zones (~72 MiB, shared by the workers) into every nginx worker at its
    # start, so its RSS is flat from then on (docs/reliability.md, "Soak", run G).
    nginx_pretouch_zones: bool = True
    segment_cache_bytes: int = DEFAULT_SEGMENT_CACHE_BYTES
    # CDN pathways for HLS Content Steering, as JSON: [{"id": "cdn-a", "base_url": "https://…",
    # "regions": ["SE", "NO"], "weight": 2}, …]. The edge itself is always the pathway "edge".
    pathways: str = ""
    steering_ttl_s: int = 300
    telemetry_queue_events: int = 10_000  # events buffered before the events API answers 429
    # Every this many seconds the first worker of each edge recounts the play counts that may
    # be off (cdn_edge.telemetry.play_recounts); 0 turns it off.
    play_recount_interval_s: float = 3600.0
    # Audio ads in free sessions (cdn_edge.ads, docs/decisions/0011); premium never has any.
    ads: bool = True
    ad_store: str = "sqlite"  # "sqlite" | "scylla"
    ad_break_every_s: float = 900.0  # listening between two breaks of one listener
    ad_slot_s: int = 60  # a free media playlist offers a break every this many seconds
    ad_decision_timeout_s: float = 0.2  # past it the break is skipped (and counted as such)

    # Real backends
    s3_endpoint: str = "127.0.0.1:8333"
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = "streamer"
    s3_secure: bool = False
    cql_hosts: str = "127.0.0.1"
    cql_port: int = 9042
    cql_keyspace: str = "streamer"
    cql_consistency: str = "ONE"  # LOCAL_QUORUM in production
    # The driver's longest wait between reconnects to a node that went down: an edge spools
    # telemetry until it is back, so at most this long after the node answers again.
    cql_reconnect_max_s: float = DEFAULT_CQL_RECONNECT_MAX_S

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @property
    def kek_path(self) -> Path:
        """The key ring file: configured, or the development ring under the data directory."""
        return Path(self.kek_file) if self.kek_file else self.secrets_dir / "kek.json"

    @property
    def base_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{self.host}:{self.port}"


def _coerce(name: str, kind: Any, value: Any, source: str) -> Any:
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"expected true or false, got {value!r}")
        if kind is Path:
            return Path(value)
        return kind(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source} ({name}) is not a valid {kind.__name__}: {exc}") from exc


def load_settings(
    file: Path | None = None, environ: Mapping[str, str] | None = None, **overrides: Any
) -> Settings:
    """Build the settings from `file` (TOML), the environment and explicit overrides."""
    environ = os.environ if environ is None else environ
    if file is None and environ.get(ENV_PREFIX + "CONFIG"):
        file = Path(environ[ENV_PREFIX + "CONFIG"])
    from_file: dict[str, Any] = {}
    if file is not None:
        try:
            from_file = tomllib.loads(file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"settings file {file} cannot be read: {exc}") from exc
    hints = get_type_hints(Settings)
    known = {f.name for f in fields(Settings)}
    unknown = set(from_file) - known
    if unknown:
        raise ConfigError(f"settings file {file} has unknown keys: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for name in known:
        env_name = ENV_PREFIX + name.upper()
        if name in overrides and overrides[name] is not None:
            values[name] = _coerce(name, hints[name], overrides[name], "argument")
        elif env_name in environ:
            values[name] = _coerce(name, hints[name], environ[env_name], env_name)
        elif name in from_file:
            values[name] = _coerce(name, hints[name], from_file[name], f"{file}: {name}")
    settings = Settings(**values)
    if settings.segment_target_s < 2 or settings.segment_target_s > 10:
        raise ConfigError(
            f"{ENV_PREFIX}SEGMENT_TARGET_S is {settings.segment_target_s}; use 2 to 10 seconds"
        )
    if settings.segments not in SEGMENTS_MODES:
        raise ConfigError(
            f"{ENV_PREFIX}SEGMENTS is {settings.segments!r}; use one of {', '.join(SEGMENTS_MODES)}"
        )
    if not 0 <= settings.shipper_nice <= MAX_NICE:
        raise ConfigError(
            f"{ENV_PREFIX}SHIPPER_NICE is {settings.shipper_nice}; use 0 (as serving) to {MAX_NICE}"
        )
    if settings.key_rotation_segments < 1:
        raise ConfigError(f"{ENV_PREFIX}KEY_ROTATION_SEGMENTS must be at least 1")
    if not MIN_CQL_RECONNECT_S <= settings.cql_reconnect_max_s <= MAX_CQL_RECONNECT_S:
        raise ConfigError(
            f"{ENV_PREFIX}CQL_RECONNECT_MAX_S is {settings.cql_reconnect_max_s}; use"
            f" {MIN_CQL_RECONNECT_S:g} to {MAX_CQL_RECONNECT_S:g} seconds"
        )
    if settings.play_recount_interval_s < 0:
        raise ConfigError(
            f"{ENV_PREFIX}PLAY_RECOUNT_INTERVAL_S is {settings.play_recount_interval_s}; "
            "use seconds > 0, or 0 for no periodic recount"
        )
    if (
        settings.ad_slot_s < 1
        or settings.ad_break_every_s < 0
        or settings.ad_decision_timeout_s <= 0
    ):
        raise ConfigError(
            f"{ENV_PREFIX}AD_SLOT_S must be at least 1 s, {ENV_PREFIX}AD_BREAK_EVERY_S at least 0 "
            f"and {ENV_PREFIX}AD_DECISION_TIMEOUT_S above 0; got {settings.ad_slot_s}, "
            f"{settings.ad_break_every_s}, {settings.ad_decision_timeout_s}"
        )
    return dataclasses.replace(settings)
