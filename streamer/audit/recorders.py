"""Opening a recorder from settings: its stream's name, the chain key, the store and spool.

Stream names say who writes: `edge.<host>.w<worker>`, `ingest-api.<host>`, `cli.<host>`.
A name may be shared (two CLI commands at once on a host): appends are compare-and-set,
so writers of one stream take turns and never fork it.
"""

from __future__ import annotations

import getpass
import re
import socket

from streamer.audit.chain import ChainKey, ChainKeys, derive_chain_key
from streamer.audit.recorder import AuditRecorder
from streamer.audit.spool import AUDIT_SPOOL_DIR, AuditSpool
from streamer.settings import Settings
from streamer.token_secrets import load_token_secrets, previous_platform_keys

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")
MAX_HOST_CHARS = 64


def host_name() -> str:
    """This host's name as a stream name may hold it."""
    return _UNSAFE.sub("-", socket.gethostname())[:MAX_HOST_CHARS].strip("-.") or "host"


def stream_name(role: str, worker: int | None = None) -> str:
    suffix = "" if worker is None else f".w{worker}"
    return f"{role}.{host_name()}{suffix}"


def cli_actor() -> str:
    """Who runs a CLI command: the operating-system user at this host."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"cli:{user}@{host_name()}"


def chain_key(settings: Settings) -> ChainKey:
    """The chain key derived from the token secret (the development one if none is set)."""
    return derive_chain_key(load_token_secrets(settings).platform_key)


def chain_keys(settings: Settings) -> ChainKeys:
    """What a verifier accepts: the current chain key and those of the retired secrets."""
    retired = tuple(derive_chain_key(key) for key in previous_platform_keys(settings))
    return ChainKeys(chain_key(settings), retired)


def open_recorder(settings: Settings, stream: str) -> AuditRecorder:
    """A recorder on `stream` of the audit log `settings` name, spooling under the data dir.

    The store is opened on first use: a store that is down costs a spooled entry, not a
    failed command.
    """
    from streamer.backends import open_audit_log

    return AuditRecorder(
        lambda: open_audit_log(settings),
        chain_key(settings),
        stream,
        AuditSpool(settings.data_dir / AUDIT_SPOOL_DIR, stream),
    )
