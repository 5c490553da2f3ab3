"""The nginx tier's configuration: a frozen dataclass and the pure functions that render it.

nginx is the single public front. It serves `/v1/s/{token}/{rendition}/{file}` itself, after
the Lua gate (`streamer_tier.lua`, ngx_lua) has verified the session token, from the embedded
object directory or, as an origin shield, from the S3 server through `proxy_cache`. Everything
else is proxied to the Python edge. Two files come out of here, both under the prefix directory:

    conf/nginx.conf      the config (no secret in it; may be world-readable)
    conf/streamer.json   what the gate reads: the playback keys, CMSD values, S3 credentials;
                         written 0600. nginx's master reads it while loading the config
                         (init_by_lua), as the user that started it, and workers inherit it in
                         memory, so the secrets never sit in the config, the environment or a
                         world-readable file

One module on purpose (about 610 lines): it renders one nginx.conf, in the file's own order
(main, http, the gate, each location), so a block of the output is found by reading down.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from cdn_edge.nginx_tier.access_log_format import (
    MAX_LOG_SHARDS,
    render_access_logs,
    render_log_format,
    shard_log_paths,
)
from cdn_edge.nginx_tier.error_pages import PROTOCOL_ERRORS, error_page_lines
from cdn_edge.nginx_tier.errors import TierConfigInvalid
from cdn_edge.playback.gate_keys import CREDENTIAL_HEADER, gate_credential
from cdn_edge.telemetry.cmsd import (
    CmsdDynamic,
    CmsdStatic,
    max_suggested_bitrate,
    render_cmsd_dynamic,
    render_cmsd_static,
)
from cdn_edge.web.cors import (
    ALLOW_HEADERS,
    ALLOW_METHODS,
    ALLOW_ORIGIN,
    EXPOSE_HEADERS,
    PREFLIGHT_MAX_AGE_S,
)
from streamer.objects.port import IMMUTABLE

SCRIPT = Path(__file__).with_name("streamer_tier.lua")
# libnginx-mod-http-lua (ngx_lua 0.10.23, LuaJIT) and the NDK it is built on, loaded first.
DEBIAN_NDK_MODULE = Path("/usr/lib/nginx/modules/ndk_http_module.so")
DEBIAN_LUA_MODULE = Path("/usr/lib/nginx/modules/ngx_http_lua_module.so")
# Verified session tokens shared by the workers: an entry is about 0.5 kB (the token, its
# claims, the dict's node), about 1.1 kB of the zone with the slab's rounding (run G of the
# soak: 6,000 sessions held 6.3 MB), so about 30,000 sessions; the least recently used go first.
TOKEN_CACHE_ZONE = "32m"
# Content keys the gate serves (streamer_tier.lua, serve_key): a key entry is about 0.3 kB
# (name, tier, 16 bytes, node), so about 25,000 keys of the last minute, with the budgets of
# each (track version, variants) seen in that minute.
KEY_CACHE_ZONE = "8m"
# Key budgets, per session and per listener: about 0.2 kB a bucket, kept only until it is full
# again, so about 150,000 buckets; a dropped one is a full one (as the edge's LRU forgets).
KEY_BUDGET_ZONE = "32m"
# The gate's zones, declared in this order. Each is made resident in every worker before
# it serves (streamer_zones.lua, pretouch): a worker's RSS then counts all of them from the
# start, about 72 MiB of shared memory that the workers map, not 72 MiB each.
GATE_ZONES = (
    ("streamer_tokens", TOKEN_CACHE_ZONE),
    ("streamer_keys", KEY_CACHE_ZONE),
    ("streamer_budgets", KEY_BUDGET_ZONE),
)
# With a status listener: each worker's last published memory, a few hundred bytes a worker.
STATUS_ZONE = ("streamer_status", "256k")
STATUS_LOCATION = "/_streamer/status"
STATUS_EVERY_S = 5  # how often each worker publishes its Lua heap; a timer, off the hot path
GATE_FETCH_LOCATION = "/_streamer/gate_key"  # as GATE_FETCH in streamer_tier.lua
SEGMENT_CONTENT_TYPE = "audio/mp4"  # what the Python edge sends (catalog_cache.content_type_for)
DEFAULT_WORKER_CONNECTIONS = 4096
DEFAULT_EDGE_KEEPALIVE = 64  # idle connections to the Python edge kept per nginx worker
ACCESS_LOG_BUFFERING = "buffer=64k flush=1s"
DEFAULT_CACHE_BYTES = 10 * 1024**3
SLICE_BYTES = 1024 * 1024  # most audio segments (100 kB-1 MB) are one slice: one upstream GET
EDGE_RETRY_AFTER_S = 2  # as the Python edge's 503s (middleware.BACKEND_RETRY_AFTER_S)
SHUTDOWN_GRACE_S = 10  # SIGQUIT waits this long for slow downloads, then closes them
_HOST = re.compile(r"[A-Za-z0-9.\-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")
_SERVER_ID = re.compile(r"[A-Za-z0-9.\-]{1,64}")
_USER = re.compile(r"[a-z_][a-z0-9_\-]{0,31}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")  # S3 bucket naming rules
_REGION = re.compile(r"[a-z0-9\-]{1,32}")


# Playlists cached by nginx: a few KB each, one per published rendition and encoding.
PLAYLIST_CACHE_ZONE = "16m"  # keys: about 128,000 entries
PLAYLIST_CACHE_MAX = "1g"
PLAYLIST_CACHE_VALID = "1d"  # a published version never changes; a day bounds a stale one


@dataclass(frozen=True)
class S3Origin:
    """The S3 server nginx shields in production, and its on-disk cache under the prefix."""

    endpoint: str  # "host:port", as Settings.s3_endpoint
    bucket: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    region: str = "us-east-1"  # versitygw and MinIO accept any region; SigV4 signs it
    secure: bool = False
    cache_max_bytes: int = DEFAULT_CACHE_BYTES

    def __post_init__(self) -> None:
        host, _, port = self.endpoint.rpartition(":")
        if not _HOST.fullmatch(host) or not port.isdigit() or not 0 < int(port) < 65536:
            raise TierConfigInvalid(f"S3 endpoint must be host:port, got {self.endpoint!r}")
        if not _BUCKET.fullmatch(self.bucket):
            raise TierConfigInvalid(f"S3 bucket {self.bucket!r} is not a valid bucket name")
        if not _REGION.fullmatch(self.region):
            raise TierConfigInvalid(f"S3 region {self.region!r} is not a region name")
        if not self.access_key or not self.secret_key:
            raise TierConfigInvalid("S3 origin needs an access key and a secret key")
        if self.cache_max_bytes < 1024**2:
            raise TierConfigInvalid(f"S3 cache of {self.cache_max_bytes} bytes; give >= 1 MiB")


@dataclass(frozen=True)
class NginxTierConfig:
    """What the generated nginx config needs; exactly one of objects_root and s3 is set."""

    prefix: Path  # nginx's own directory: conf/, logs/, tmp/, cache/, nginx.pid
    edge_upstream: str  # "host:port" of the Python edge, for everything but segments
    objects_root: Path | None = None  # the local object store's root (data_dir / "objects")
    s3: S3Origin | None = None
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    worker_processes: int = 1
    worker_connections: int = DEFAULT_WORKER_CONNECTIONS
    # None omits `user`: a root master then runs workers as nobody, a non-root one as itself.
    user: str | None = None
    server_id: str = "edge"  # CMSD-Dynamic's server identifier
    script: Path = SCRIPT
    ndk_module: Path = DEBIAN_NDK_MODULE
    lua_module: Path = DEBIAN_LUA_MODULE
    edge_keepalive: int = DEFAULT_EDGE_KEEPALIVE
    # The access log as this many files, one shipper each (access_log_format.py, "Shards").
    log_shards: int = 1
    # What the edge's media playlist bodies carry besides the track ("plain", or "ads-<slot s>"
    # for free bodies with ad breaks, cdn_edge.ads): part of the playlist cache key, so a cache
    # kept across restarts never serves bodies of another layout (ads turned on or off).
    playlist_layout: str = "plain"
    # Fault every page of the gate's zones into each worker at its start (streamer_zones.lua).
    pretouch_zones: bool = True
    # A second listener on 127.0.0.1 answering STATUS_LOCATION (each worker's Lua heap, the
    # zones' free space); None: none, and no worker runs the status timer.
    status_port: int | None = None

    def __post_init__(self) -> None:
        for name in ("prefix", "script", "ndk_module", "lua_module"):
            if not getattr(self, name).is_absolute():
                raise TierConfigInvalid(
                    f"{name} must be an absolute path, got {getattr(self, name)}"
                )
        if (self.objects_root is None) == (self.s3 is None):
            raise TierConfigInvalid("give exactly one of objects_root (local) and s3")
        if self.objects_root is not None and not self.objects_root.is_absolute():
            raise TierConfigInvalid(f"objects_root must be absolute, got {self.objects_root}")
        host, _, port = self.edge_upstream.rpartition(":")
        if not _HOST.fullmatch(host) or not port.isdigit() or not 0 < int(port) < 65536:
            raise TierConfigInvalid(f"edge_upstream must be host:port, got {self.edge_upstream!r}")
        if not _HOST.fullmatch(self.listen_host):
            raise TierConfigInvalid(f"listen_host {self.listen_host!r} is not a host")
        if not 0 < self.listen_port < 65536:  # 0 would hide the port nginx picked
            raise TierConfigInvalid(f"listen_port {self.listen_port} is not 1-65535")
        if not 1 <= self.worker_processes <= 1024:
            raise TierConfigInvalid(f"worker_processes {self.worker_processes} is not 1-1024")
        if not 64 <= self.worker_connections <= 1_000_000:
            raise TierConfigInvalid(f"worker_connections {self.worker_connections} not 64-1e6")
        if self.user is not None and not _USER.fullmatch(self.user):
            raise TierConfigInvalid(f"user {self.user!r} is not a user name")
        if not _SERVER_ID.fullmatch(self.server_id):
            raise TierConfigInvalid(f"server_id {self.server_id!r} is not 1-64 of [A-Za-z0-9.-]")
        if not 1 <= self.edge_keepalive <= 10_000:
            raise TierConfigInvalid(f"edge_keepalive {self.edge_keepalive} is not 1-10000")
        if not _SERVER_ID.fullmatch(self.playlist_layout):
            raise TierConfigInvalid(
                f"playlist_layout {self.playlist_layout!r} is not 1-64 of [A-Za-z0-9.-]"
            )
        if self.status_port is not None and not (
            0 < self.status_port < 65536 and self.status_port != self.listen_port
        ):
            raise TierConfigInvalid(
                f"status_port {self.status_port} is not 1-65535 apart from listen_port "
                f"{self.listen_port}"
            )
        if not 1 <= self.log_shards <= MAX_LOG_SHARDS:
            raise TierConfigInvalid(f"log_shards {self.log_shards} is not 1-{MAX_LOG_SHARDS}")
        for name in ("prefix", "objects_root", "script", "ndk_module", "lua_module"):
            value = getattr(self, name)
            if value is not None and not _safe_path(value):
                raise TierConfigInvalid(f"{name} {value} has characters nginx config cannot hold")

    # The layout under the prefix.
    @property
    def conf_file(self) -> Path:
        return self.prefix / "conf" / "nginx.conf"

    @property
    def gate_settings_file(self) -> Path:
        return self.prefix / "conf" / "streamer.json"

    @property
    def access_log(self) -> Path:
        """The access log; with log_shards > 1, the name its shards are named after."""
        return self.prefix / "logs" / "access.log"

    @property
    def access_logs(self) -> tuple[Path, ...]:
        """The files nginx writes the access log to: access.log, or access.0.log, ..."""
        return shard_log_paths(self.access_log, self.log_shards)

    @property
    def error_log(self) -> Path:
        return self.prefix / "logs" / "error.log"

    @property
    def pid_file(self) -> Path:
        return self.prefix / "nginx.pid"

    @property
    def temp_dir(self) -> Path:
        return self.prefix / "tmp"

    @property
    def cache_dir(self) -> Path:
        return self.prefix / "cache"


def _safe_path(path: Path) -> bool:
    # Paths are written into the config unquoted-safe: no spaces, quotes, ';', '{', '$'.
    return re.fullmatch(r"[A-Za-z0-9_./\-+@:=,]+", str(path)) is not None


def render_gate_settings(config: NginxTierConfig, playback_keys: tuple[bytes, ...]) -> str:
    """conf/streamer.json: the keys that verify session tokens (newest first), CMSD values and
    the S3 credentials. Secret: write it 0600."""
    if not playback_keys:
        raise TierConfigInvalid("give at least one playback key")
    s3 = config.s3
    doc = {
        "keys": [key.hex() for key in playback_keys],
        # The gate's key fetch to the edge carries it (cdn_edge.playback.gate_keys).
        "gate_credential": gate_credential(playback_keys[0]),
        "cmsd": cmsd_values(config.server_id),
        "s3": None
        if s3 is None
        else {
            "host": s3.endpoint,
            "bucket": s3.bucket,
            "region": s3.region,
            "access_key": s3.access_key,
            "secret_key": s3.secret_key,
        },
        "zones": {name: zone_bytes(size) for name, size in GATE_ZONES},
        "pretouch": config.pretouch_zones,
        "status_every_s": STATUS_EVERY_S if config.status_port is not None else None,
    }
    return json.dumps(doc, sort_keys=True, indent=1) + "\n"


def zone_bytes(size: str) -> int:
    """The bytes of an nginx size ("32m", "256k", "4096"), as nginx reads it."""
    match = re.fullmatch(r"([0-9]+)([kKmM]?)", size)
    if match is None:
        raise TierConfigInvalid(f"zone size {size!r} is not a number with k or m")
    return int(match.group(1)) * {"": 1, "k": 1024, "m": 1024**2}[match.group(2).lower()]


def cmsd_values(server_id: str) -> dict[str, object]:
    """The CMSD header values nginx can know without the track record (see cmsd.py).

    CMSD-Static carries ot/sf/st but not d and br (the edge reads those from the record);
    CMSD-Dynamic carries mb for free sessions (the tier's ceiling) and the gate appends rtt. etp,
    rd and du are the Python edge's alone (TCP_INFO's mss and its congestion signal).
    """
    return {
        "static_init": render_cmsd_static(CmsdStatic(ot="i")),
        "static_media": render_cmsd_static(CmsdStatic(ot="a")),
        "dynamic": {
            tier: render_cmsd_dynamic(
                (CmsdDynamic(server=server_id, mb=max_suggested_bitrate(tier)),)
            )
            for tier in ("free", "premium")
        },
    }


# Config rendering: one function per block, joined by render_config.

_GATE_VARS = (
    "streamer_error_body",
    "streamer_session_id",
    "streamer_track_id",
    "streamer_version",
    "streamer_tier",
    "streamer_rendition",
    "streamer_object",
    "streamer_object_path",
    "streamer_cmsd_static",
    "streamer_cmsd_dynamic",
    "streamer_s3_date",
    "streamer_key_tier",
)

# Refusals the tier answers itself, in the Python edge's JSON shape (middleware.json_error).
# status -> (named location, body or None for the gate's $streamer_error_body, extra headers)
_REFUSALS: dict[int, tuple[str, str | None, tuple[tuple[str, str], ...]]] = {
    400: ("@streamer_400", None, ()),
    401: ("@streamer_401", None, (("WWW-Authenticate", 'Bearer realm="streamer-edge"'),)),
    403: ("@streamer_403", None, ()),
    404: ("@streamer_404", '{"error":"not_found","message":"no such segment"}', ()),
    405: (
        "@streamer_405",
        '{"error":"method_not_allowed","message":"segments answer GET and HEAD"}',
        (("Allow", "GET, HEAD"),),
    ),
    500: (
        "@streamer_500",
        '{"error":"internal_error","message":"unexpected error; see the server log"}',
        (),
    ),
}
_BAD_PATH = "@streamer_bad_path"
_BAD_PATH_BODY = (
    '{"error":"malformed_name","message":"the path holds an encoded separator or dot, '
    'a dot segment or an empty segment"}'
)
_EDGE_DOWN = "@streamer_edge_down"
_EDGE_DOWN_BODY = '{"error":"unavailable","message":"the edge could not serve this; retry shortly"}'


def _header(name: str, value: str, always: bool = False) -> str:
    quoted = f"'{value}'" if '"' in value else f'"{value}"'
    return f"add_header {name} {quoted}{' always' if always else ''};"


def _cors(always: bool) -> list[str]:
    return [
        _header("Access-Control-Allow-Origin", ALLOW_ORIGIN, always),
        _header("Access-Control-Expose-Headers", EXPOSE_HEADERS, always),
        _header("X-Request-Id", "$streamer_request_id", always),
    ]


def _main(config: NginxTierConfig) -> list[str]:
    lines = [
        "# Generated by cdn_edge.nginx_tier.config; rewritten on every start, do not edit.",
        f"load_module {config.ndk_module};",
        f"load_module {config.lua_module};",
        "daemon off;  # a supervised child of the Python process, never the system service",
        "master_process on;",
        f"worker_processes {config.worker_processes};",
        f"pid {config.pid_file};",
        f"error_log {config.error_log} warn;",
        f"worker_shutdown_timeout {SHUTDOWN_GRACE_S}s;",
    ]
    if config.user is not None:
        lines.append(f"user {config.user};")
    lines += [f"events {{ worker_connections {config.worker_connections}; }}", ""]
    return lines


def _http_head(config: NginxTierConfig) -> list[str]:
    t = config.temp_dir
    lines = [
        # Debian's build points these at /var/lib/nginx; ours stay under the prefix.
        f"client_body_temp_path {t}/client_body;",
        f"proxy_temp_path {t}/proxy;",
        f"fastcgi_temp_path {t}/fastcgi;",
        f"uwsgi_temp_path {t}/uwsgi;",
        f"scgi_temp_path {t}/scgi;",
        "server_tokens off;",
        "sendfile on;",
        "tcp_nopush on;",
        "tcp_nodelay on;",
        "keepalive_timeout 65s;",
        "keepalive_requests 10000;  # a player fetches hundreds of segments over one connection",
        "client_header_timeout 10s;",
        "client_body_timeout 60s;",
        "send_timeout 60s;",
        # Published objects never change in place (a new master is a new version directory).
        "open_file_cache max=20000 inactive=60s;",
        "open_file_cache_valid 60s;",
        "",
        render_log_format(),
        *render_access_logs(config.access_logs, ACCESS_LOG_BUFFERING),
        "",
        *_gate_setup(config),
        "",
        # Tokens travel in these paths: the log keeps the route and drops the token.
        "map $uri $streamer_log_uri {",
        "    default $uri;",
        '    "~^/v1/(s|steer)/[^/]*(/.*)?$" /v1/$1/-$2;',
        "}",
        # The raw path (before nginx decodes and merges it) with an encoded separator or dot,
        # a NUL, a backslash, a dot segment or an empty segment: never a URL we issue.
        "map $request_uri $streamer_bad_path {",
        "    default 0;",
        '    "~^[^?]*(%2[FfEe]|%5[Cc]|%00|\\x5c|//|/\\.\\.?(/|\\?|$))" 1;',
        "}",
        # The caller's request id when it is sane (as middleware._request_id), else nginx's.
        "map $http_x_request_id $streamer_request_id {",
        "    default $request_id;",
        '    "~^[A-Za-z0-9_.\\-]{8,64}$" $http_x_request_id;',
        "}",
        "",
        # Media playlists are cached per published rendition and per encoding; "gzip" only
        # when the player takes it (q=0 refuses it, RFC 9110 12.5.3), so the edge's choice
        # below sees the same header for every request that shares a cached body.
        "map $http_accept_encoding $streamer_gzip {",
        '    default "";',
        '    "~*gzip(?!\\s*;\\s*q=0(\\.0*)?(\\s|,|$))" gzip;',
        "}",
        f"proxy_cache_path {config.prefix / 'playlists'} levels=1:2 "
        f"keys_zone=streamer_playlists:{PLAYLIST_CACHE_ZONE} max_size={PLAYLIST_CACHE_MAX} "
        "inactive=1h use_temp_path=off;",
        "",
        "upstream streamer_edge {",
        f"    server {config.edge_upstream} max_fails=0;",
        f"    keepalive {config.edge_keepalive};",
        "    keepalive_timeout 60s;  # below aiohttp's 75 s, so nginx closes idle ones first",
        "}",
    ]
    if config.s3 is not None:
        s3 = config.s3
        lines += [
            "upstream streamer_s3 {",
            f"    server {s3.endpoint} max_fails=0;",
            "    keepalive 32;",
            "}",
            f"proxy_cache_path {config.cache_dir} levels=1:2 keys_zone=streamer_segments:64m "
            f"max_size={s3.cache_max_bytes} inactive=30d use_temp_path=off;",
        ]
    return lines


def _gate_setup(config: NginxTierConfig) -> list[str]:
    """The gate's http-level setup: its script, its settings (read by the master), its dict."""
    module = config.script.stem
    return [
        # ";;" keeps the default path, where Debian's lua-resty-core and lua-cjson live.
        f'lua_package_path "{config.script.parent}/?.lua;;";',
        *(f"lua_shared_dict {name} {size};" for name, size in GATE_ZONES),
        *([f"lua_shared_dict {STATUS_ZONE[0]} {STATUS_ZONE[1]};"] if config.status_port else []),
        # The master reads the 0600 settings file as the user that started it; workers
        # inherit the values in memory.
        f'init_by_lua_block {{ require("{module}").init("{config.gate_settings_file}") }}',
        f'init_worker_by_lua_block {{ require("{module}").init_worker() }}',
    ]


def _gate_variables() -> list[str]:
    """The variables the gate fills, declared (empty) for every request: ngx_lua assigns only
    variables nginx already knows, and the access log reads them on every route."""
    return [f'set ${name} "";' for name in _GATE_VARS]


def _gate_call(config: NginxTierConfig, function: str, variable: str) -> str:
    """Runs the gate's `function` in the rewrite phase (set_by_lua: no coroutine, the
    cheapest of ngx_lua's hooks), its answer in $variable."""
    return f'set_by_lua_block ${variable} {{ return require("{config.script.stem}").{function}() }}'


def _preflight() -> list[str]:
    return [
        "if ($request_method = OPTIONS) {",
        *(
            "    " + line
            for line in [
                _header("Access-Control-Allow-Methods", ALLOW_METHODS, True),
                _header("Access-Control-Allow-Headers", ALLOW_HEADERS, True),
                _header("Access-Control-Max-Age", str(PREFLIGHT_MAX_AGE_S), True),
                *_cors(True),
                "return 204;",
            ]
        ),
        "}",
    ]


def _token_gate(config: NginxTierConfig) -> list[str]:
    """GET and HEAD only, after the check of the session token in the path."""
    return [
        "if ($request_method !~ ^(GET|HEAD)$) { return 405; }",
        _gate_call(config, "authorize", "streamer_auth"),
        # $streamer_auth is the gate's answer; `if` with `return` alone is safe in nginx.
        "if ($streamer_auth = 400) { return 400; }",
        "if ($streamer_auth = 401) { return 401; }",
        "if ($streamer_auth = 403) { return 403; }",
        "if ($streamer_auth != ok) { return 500; }  # fail closed if the gate threw",
        *(f"error_page {status} = {name};" for status, (name, _, _) in _REFUSALS.items()),
    ]


def _segment_location(config: NginxTierConfig) -> list[str]:
    # Matched on the normalised path; the gate then checks the raw one strictly.
    body = [
        "set $streamer_route segment;",
        # Error lines quote the request line, token and all; the access log has the status.
        f"error_log {config.error_log} crit;",
        *_preflight(),
        *_token_gate(config),
        _header("Cache-Control", IMMUTABLE),
        *_cors(False),
        "add_header CMSD-Static $streamer_cmsd_static;",
        "add_header CMSD-Dynamic $streamer_cmsd_dynamic;",
        "max_ranges 1;  # one range, as the Python edge; more get the whole object",
        *error_page_lines(mapped=_REFUSALS),
    ]
    if config.objects_root is not None:
        body += [
            "types { }",
            f"default_type {SEGMENT_CONTENT_TYPE};",
            "log_not_found off;  # a 404's error line would carry the request line's token",
            f"alias {config.objects_root}/$streamer_object_path;",
        ]
    else:
        body += _s3_origin(config)
    return [
        'location ~ "^/v1/s/[^/]+/[^/]+/(init\\.mp4|seg_[0-9]+\\.m4s)$" {',
        *("    " + line for line in body),
        "}",
    ]


def _s3_origin(config: NginxTierConfig) -> list[str]:
    assert config.s3 is not None
    s3 = config.s3
    scheme = "https" if s3.secure else "http"
    return [
        f"slice {SLICE_BYTES};",
        "proxy_cache streamer_segments;",
        # Keyed by the object, never the token: every session shares one cached copy.
        "proxy_cache_key $streamer_object_path$slice_range;",
        "proxy_cache_lock on;  # single flight: one upstream GET per object slice",
        "proxy_cache_lock_timeout 10s;",
        "proxy_cache_lock_age 10s;",
        "proxy_cache_valid 200 206 1y;",
        "proxy_cache_use_stale error timeout updating;",
        "proxy_ignore_headers Cache-Control Expires Set-Cookie;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        f"proxy_set_header Host {s3.endpoint};",
        "proxy_set_header Range $slice_range;",
        # Both share one timestamp (the gate sets $streamer_s3_date with the signature).
        _gate_call(config, "s3_authorization", "streamer_s3_authorization"),
        "proxy_set_header Authorization $streamer_s3_authorization;",
        "proxy_set_header x-amz-date $streamer_s3_date;",
        "proxy_set_header x-amz-content-sha256 "
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855;",
        'proxy_set_header Cookie "";',
        'proxy_set_header If-None-Match "";',
        'proxy_set_header If-Modified-Since "";',
        "proxy_hide_header Content-Type;",
        "proxy_hide_header x-amz-request-id;",
        "proxy_hide_header x-amz-id-2;",
        "proxy_hide_header Set-Cookie;",
        _header("Content-Type", SEGMENT_CONTENT_TYPE),
        "proxy_connect_timeout 5s;",
        "proxy_read_timeout 30s;",
        "proxy_send_timeout 30s;",
        "proxy_intercept_errors on;  # S3's XML errors become our JSON ones",
        f"proxy_pass {scheme}://streamer_s3/{s3.bucket}/$streamer_object_path;",
    ]


def _playlist_location(config: NginxTierConfig) -> list[str]:
    """Media playlists: the same gate as segments, then the edge's body from the cache.

    The body of /v1/s/{token}/{rendition}/playlist.m3u8 names everything relatively, so it is the
    same for every session of a published version (cdn_edge.playback.playlist_builder): the edge
    renders it once per version, rendition and encoding, and nginx serves every other request after
    one token check. The edge is asked without the CMCD query, so a miss is not a sample: the
    access log line is (`streamer logship`)."""
    body = [
        "set $streamer_route playlist;",
        f"error_log {config.error_log} crit;",
        *_preflight(),
        *_token_gate(config),
        f"error_page 502 504 = {_EDGE_DOWN};",
        *error_page_lines(mapped={*_REFUSALS, 502, 504}),
        "proxy_pass http://streamer_edge$uri;  # without the query",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_set_header Host $http_host;",
        "proxy_set_header Accept-Encoding $streamer_gzip;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Request-Id $streamer_request_id;",
        "proxy_cache streamer_playlists;",
        # Per tier too: a free session's body carries its ad breaks (cdn_edge.ads), and the
        # tier comes from the signed token, so a free listener never gets the ad-free body.
        f'proxy_cache_key "$streamer_object_path $streamer_tier $streamer_gzip '
        f'{config.playlist_layout}";',
        "proxy_cache_lock on;  # single flight: one render per rendition and encoding",
        "proxy_cache_lock_timeout 5s;",
        # The edge says "private" because the URL is personal; the body is not, and it never
        # changes for a published version.
        "proxy_ignore_headers Cache-Control Expires Set-Cookie;",
        f"proxy_cache_valid 200 {PLAYLIST_CACHE_VALID};",
        "proxy_connect_timeout 5s;",
        "proxy_read_timeout 30s;",
    ]
    return [
        'location ~ "^/v1/s/[^/]+/[^/]+/playlist\\.m3u8$" {',
        *("    " + line for line in body),
        "}",
    ]


def _key_location(config: NginxTierConfig) -> list[str]:
    """Content keys, served by the gate from its dict after the token, tier and budget checks
    (streamer_tier.lua, serve_key; docs/decisions/0010-keys-in-the-gate.md). The gate writes
    every answer itself, refusals in the edge's JSON shape."""
    body = [
        "set $streamer_route key;",
        f"error_log {config.error_log} crit;",
        *_preflight(),
        "if ($request_method !~ ^(GET|HEAD)$) { return 405; }",
        f"error_page 405 = {_REFUSALS[405][0]};",
        # The clear key must not stay in any cache, shared or private (handlers/keys.py).
        _header("Cache-Control", "no-store", True),
        *_cors(True),
        f'content_by_lua_block {{ require("{config.script.stem}").serve_key() }}',
    ]
    return [
        'location ~ "^/v1/s/[^/]+/keys/[^/]+$" {',
        *("    " + line for line in body),
        "}",
    ]


def _gate_fetch_location(config: NginxTierConfig) -> list[str]:
    """The gate's subrequest for a key its dict lacks: internal, so no client reaches it; the
    credential travels from the gate's memory as an argument, never in this file."""
    body = [
        "internal;",
        f"error_log {config.error_log} crit;  # upstream errors would quote the token",
        "proxy_pass http://streamer_edge/v1/gate/s/$arg_t/keys/$arg_k;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";',
        "proxy_pass_request_headers off;  # nothing of the client's request but its id",
        "proxy_set_header Host $http_host;",
        "proxy_set_header X-Request-Id $streamer_request_id;",
        f"proxy_set_header {CREDENTIAL_HEADER} $arg_c;",
        "proxy_connect_timeout 5s;",
        "proxy_read_timeout 30s;",
    ]
    return [
        f"location = {GATE_FETCH_LOCATION} {{",
        *("    " + line for line in body),
        "}",
    ]


def _edge_location(config: NginxTierConfig) -> list[str]:
    body = [
        "set $streamer_route edge;",
        f"error_log {config.error_log} crit;  # upstream errors would quote the token",
        "if ($streamer_bad_path) { return 400; }",
        f"error_page 400 = {_BAD_PATH};",
        f"error_page 502 504 = {_EDGE_DOWN};",
        *error_page_lines(mapped={400, 502, 504}),
        "proxy_pass http://streamer_edge;",
        "proxy_http_version 1.1;",
        'proxy_set_header Connection "";  # keepalive to the edge',
        "proxy_set_header Host $http_host;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
        "proxy_set_header X-Request-Id $streamer_request_id;",
        # Masters stream through to the ingest API, which enforces its own size limit.
        "client_max_body_size 0;",
        "proxy_request_buffering off;",
        "proxy_connect_timeout 5s;",
        "proxy_read_timeout 120s;",
        "proxy_send_timeout 120s;",
    ]
    return ["location / {", *("    " + line for line in body), "}"]


def _named(name: str, status: int, body: str, headers: tuple[tuple[str, str], ...]) -> list[str]:
    inner = [
        "types { }",
        "default_type application/json;",
        _header("Cache-Control", "no-store", True),
        *_cors(True),
        *(_header(k, v, True) for k, v in headers),
        f"return {status} {body};",
    ]
    return [f"location {name} {{", *("    " + line for line in inner), "}"]


def _refusal_locations() -> list[str]:
    lines: list[str] = []
    for status, (name, literal, headers) in _REFUSALS.items():
        lines += _named(
            name, status, f"'{literal}'" if literal else "$streamer_error_body", headers
        )
    lines += _named(_BAD_PATH, 400, f"'{_BAD_PATH_BODY}'", ())
    lines += _named(
        _EDGE_DOWN, 503, f"'{_EDGE_DOWN_BODY}'", (("Retry-After", str(EDGE_RETRY_AFTER_S)),)
    )
    return lines


def _protocol_error_locations() -> list[str]:
    lines: list[str] = []
    for error in PROTOCOL_ERRORS:
        inner = _named(error.location, error.sent, f"'{error.body}'", ())[1:-1]
        lines += [f"location = {error.location} {{", "    internal;", *inner, "}"]
    return lines


def _status_server(config: NginxTierConfig) -> list[str]:
    """The status listener, loopback only: the gate's memory for the soak and operators."""
    if config.status_port is None:
        return []
    body = [
        f"listen 127.0.0.1:{config.status_port};",
        "access_log off;  # not a listener's request: nothing for the shipper",
        f"location = {STATUS_LOCATION} {{",
        f'    content_by_lua_block {{ require("{config.script.stem}").status() }}',
        "}",
        "location / { return 404; }",
    ]
    return ["", "server {", *("    " + line for line in body), "}"]


def render_config(config: NginxTierConfig) -> str:
    """The whole nginx.conf for `config`."""
    server = [
        f"listen {config.listen_host}:{config.listen_port} backlog=4096;",
        "server_name _;",
        *_gate_variables(),
        *_segment_location(config),
        *_playlist_location(config),
        *_key_location(config),
        *_gate_fetch_location(config),
        *_edge_location(config),
        *_refusal_locations(),
        *error_page_lines(),  # nginx's own refusals before any location (error_pages.py)
        *_protocol_error_locations(),
    ]
    http = [
        *_http_head(config),
        "",
        "server {",
        *("    " + s for s in server),
        "}",
        *_status_server(config),
    ]
    lines = [*_main(config), "http {", *("    " + s for s in http), "}"]
    return "\n".join(lines) + "\n"
