"""nginx as a supervised child: write its prefix, check its config, start, wait, stop.

Never the system service: nginx runs in the foreground (`daemon off;`) with our config and
prefix, `-e` naming the error log so Debian's compiled-in /var/log/nginx is never opened.
Signals (nginx's own meanings): SIGQUIT drains and stops, SIGTERM stops at once, SIGUSR1
reopens the log files after a rotation (rename first, then `reopen_logs`).

The child carries a parent-death signal (util-linux `setpriv --pdeathsig TERM`, as ffmpeg does
in transcoder/ffmpeg_runner.py), so a killed Python process does not leave nginx holding the
port. Linux sends it when the *thread* that started the child ends: call `start_nginx_tier`
from a thread that lives as long as the tier (the main thread), or pass die_with_parent=False.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import TracebackType

from cdn_edge.nginx_tier.config import (
    DEBIAN_LUA_MODULE,
    DEBIAN_NDK_MODULE,
    SHUTDOWN_GRACE_S,
    NginxTierConfig,
    render_config,
    render_gate_settings,
)
from cdn_edge.nginx_tier.errors import (
    NginxConfigRejected,
    NginxExited,
    NginxNotInstalled,
    NginxStartTimeout,
)

DEFAULT_NGINX = "nginx"
CHECK_TIMEOUT_S = 15.0  # `nginx -t` parses the config and loads the Lua module: well under 1 s
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = SHUTDOWN_GRACE_S + 5.0  # SIGQUIT lets workers finish up to the grace period
TERM_TIMEOUT_S = 5.0
POLL_S = 0.02
INSTALL_HINT = (
    "run ./dev setup (it installs Debian's nginx-light, libnginx-mod-http-lua and lua-cjson)"
)
LUA_CJSON = "/usr/lib/*/lua/5.1/cjson.so"  # Debian's lua-cjson, on LuaJIT's default path
_TEMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def _nginx_path(nginx: str) -> str:
    found = shutil.which(nginx)
    if found is None:
        raise NginxNotInstalled(f"nginx binary {nginx!r} is not on PATH; {INSTALL_HINT}")
    return found


def tier_missing(
    nginx: str = DEFAULT_NGINX,
    modules: tuple[Path, ...] = (DEBIAN_NDK_MODULE, DEBIAN_LUA_MODULE),
) -> str | None:
    """Why the tier cannot run on this machine (no nginx binary or no Lua module), or None."""
    try:
        _nginx_path(nginx)
    except NginxNotInstalled as exc:
        return str(exc)
    for module in modules:
        if not module.is_file():
            return f"nginx module {module} is missing; {INSTALL_HINT}"
    if not any(Path("/").glob(LUA_CJSON.lstrip("/"))):
        return f"lua-cjson ({LUA_CJSON}) is missing; {INSTALL_HINT}"
    return None


def _check_installed(config: NginxTierConfig, nginx: str) -> str:
    binary = _nginx_path(nginx)
    for module in (config.ndk_module, config.lua_module):
        if not module.is_file():
            raise NginxNotInstalled(f"nginx module {module} is missing; {INSTALL_HINT}")
    if not config.script.is_file():
        raise NginxNotInstalled(f"gate script {config.script} is missing from the package")
    return binary


def _write_atomic(path: Path, text: str, mode: int) -> None:
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), mode)
            f.write(text)
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise


def workers_user(config: NginxTierConfig) -> NginxTierConfig:
    """`config` with `user` set when we run as root and none was given.

    A root master would run workers as nobody, who may not read the object store's files
    (they sit under a data directory that may be 0700), nor reach the S3 cache under the
    prefix. Workers run as the owner of the objects root (or of the prefix's nearest existing
    directory, for S3) instead: whoever the store writes as.
    """
    if config.user is not None or os.geteuid() != 0:
        return config
    owned = config.objects_root if config.objects_root is not None else config.prefix
    while not owned.exists() and owned != owned.parent:
        owned = owned.parent
    return replace(config, user=pwd.getpwuid(owned.stat().st_uid).pw_name)


def prepare_prefix(config: NginxTierConfig, playback_keys: tuple[bytes, ...]) -> None:
    """Create the prefix layout and write nginx.conf (0644) and the gate's settings (0600)."""
    for directory in (
        config.conf_file.parent,
        config.access_log.parent,
        config.temp_dir,
        *(config.temp_dir / name for name in _TEMP_DIRS),
    ):
        directory.mkdir(parents=True, exist_ok=True)
    if config.s3 is not None:
        config.cache_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(config.gate_settings_file, render_gate_settings(config, playback_keys), 0o600)
    _write_atomic(config.conf_file, render_config(config), 0o644)
    if config.user is not None:
        # Workers write temp and cache files; the master (root) opens the logs itself.
        entry = pwd.getpwnam(config.user)
        for directory in (config.temp_dir, *(config.temp_dir / n for n in _TEMP_DIRS)):
            os.chown(directory, entry.pw_uid, entry.pw_gid)
        if config.s3 is not None:
            os.chown(config.cache_dir, entry.pw_uid, entry.pw_gid)


def _args(binary: str, config: NginxTierConfig) -> list[str]:
    # -p with a trailing slash: nginx joins relative paths onto it as written.
    return [
        binary,
        "-p",
        f"{config.prefix}/",
        "-c",
        str(config.conf_file),
        "-e",
        str(config.error_log),
    ]


def check_config(config: NginxTierConfig, nginx: str = DEFAULT_NGINX) -> None:
    """Run `nginx -t` on the written config; NginxConfigRejected with nginx's words if bad."""
    binary = _check_installed(config, nginx)
    try:
        done = subprocess.run(
            [*_args(binary, config), "-t", "-q"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=CHECK_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise NginxConfigRejected(
            f"{binary} -t on {config.conf_file} took over {CHECK_TIMEOUT_S} s"
        ) from exc
    if done.returncode != 0:
        words = (done.stderr or done.stdout).strip()
        missing_directive = 'unknown directive "' in words and "lua" in words
        if "module.so" in words or missing_directive or "module 'cjson" in words:
            # A module that does not load, or lua-cjson, which the gate requires.
            raise NginxNotInstalled(f"{binary} cannot load the gate ({words}); {INSTALL_HINT}")
        raise NginxConfigRejected(f"{binary} -t refused {config.conf_file}: {words}")


def _port_answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host.strip("[]"), port), timeout=0.5):
            return True
    except OSError:
        return False


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


class NginxTier:
    """A running nginx tier: its config and master process."""

    def __init__(self, config: NginxTierConfig, process: subprocess.Popen[bytes]) -> None:
        self.config = config
        self.process = process

    def __repr__(self) -> str:
        return f"NginxTier(pid={self.process.pid}, port={self.config.listen_port})"

    @property
    def url(self) -> str:
        return f"http://{self.config.listen_host}:{self.config.listen_port}"

    def running(self) -> bool:
        return self.process.poll() is None

    def reopen_logs(self) -> None:
        """Reopen the access and error logs (after the shipper or logrotate renamed them)."""
        if self.running():
            self.process.send_signal(signal.SIGUSR1)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """Drain (SIGQUIT), then stop (SIGTERM), then kill; returns the exit status."""
        try:
            for sig, wait_s in ((signal.SIGQUIT, timeout_s), (signal.SIGTERM, TERM_TIMEOUT_S)):
                if not self.running():
                    break
                self.process.send_signal(sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    return self.process.wait(wait_s)
            if self.running():
                self.process.kill()
            return self.process.wait(TERM_TIMEOUT_S)
        finally:
            self.kill_orphans()

    def kill_orphans(self) -> None:
        """Kill workers a dead master left behind.

        nginx's workers outlive a master killed with SIGKILL and go on accepting on the
        listening socket, so a new master could not bind the port. The master leads its own
        process group (start_new_session), which its workers share: killing the group reaches
        exactly them.
        """
        if self.running():
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def __enter__(self) -> NginxTier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _stderr_tail(path: Path, limit: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:].strip()
    except OSError:
        return ""


def start_nginx_tier(
    config: NginxTierConfig,
    playback_keys: tuple[bytes, ...],
    *,
    nginx: str = DEFAULT_NGINX,
    timeout_s: float = START_TIMEOUT_S,
    die_with_parent: bool = True,
) -> NginxTier:
    """Write the prefix, check the config, start nginx and wait until its port answers.

    `playback_keys` verify session tokens, newest first (TokenSecrets.playback_key, plus the
    previous keys while they rotate). Raises NginxNotInstalled, NginxConfigRejected,
    NginxExited or NginxStartTimeout; on any of them no nginx is left running.
    """
    config = workers_user(config)
    binary = _check_installed(config, nginx)
    prepare_prefix(config, playback_keys)
    check_config(config, binary)
    config.pid_file.unlink(missing_ok=True)
    stderr_path = config.access_log.parent / "nginx.stderr"
    args = _args(binary, config)
    setpriv = shutil.which("setpriv") if die_with_parent else None
    if setpriv:
        args = [setpriv, "--pdeathsig", "TERM", "--", *args]
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,  # a terminal's Ctrl-C reaches Python, which stops us
        )
    tier = NginxTier(config, process)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if not tier.running():
                raise NginxExited(
                    f"{binary} exited with {process.returncode} while starting on "
                    f"{config.listen_host}:{config.listen_port}: {_stderr_tail(stderr_path)}"
                )
            # The master writes its pid file after it has bound the listening sockets, so a
            # port answered by someone else is not taken for ours.
            if _read_pid(config.pid_file) == process.pid and _port_answers(
                config.listen_host, config.listen_port
            ):
                return tier
            if time.monotonic() > deadline:
                raise NginxStartTimeout(
                    f"{binary} did not answer on {config.listen_host}:{config.listen_port} "
                    f"within {timeout_s} s; see {config.error_log}"
                )
            time.sleep(POLL_S)
    except BaseException:
        tier.stop(timeout_s=TERM_TIMEOUT_S)
        raise
