"""`streamer audit verify|list`, and the operators' commands they audit, in every store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from streamer.audit.model import AuditAction
from streamer.audit.port import AuditLog
from streamer.audit.spool import AUDIT_SPOOL_DIR
from streamer.backends import open_audit_log
from streamer.settings import ENV_PREFIX, Settings, load_settings
from streamer_app.cli import main
from tests.backends.cql_fixtures import shared_test_keyspace
from tests.backends.services import backend_params
from tests.contract.audit_logs import AUDIT_LOGS, edit_actor, swap_entries


@pytest.fixture(params=backend_params(("sqlite", "scylla")))
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The environment that makes `streamer` use this store, and the settings it reads."""
    monkeypatch.delenv(f"{ENV_PREFIX}CONFIG", raising=False)
    monkeypatch.setenv(f"{ENV_PREFIX}DATA_DIR", str(tmp_path))
    if request.param == "scylla":
        AUDIT_LOGS["scylla"](tmp_path).close()  # empties the audit tables for this test
        cql = shared_test_keyspace().settings
        monkeypatch.setenv(f"{ENV_PREFIX}SESSION_STORE", "scylla")
        monkeypatch.setenv(f"{ENV_PREFIX}CQL_HOSTS", cql.cql_hosts)
        monkeypatch.setenv(f"{ENV_PREFIX}CQL_PORT", str(cql.cql_port))
        monkeypatch.setenv(f"{ENV_PREFIX}CQL_KEYSPACE", cql.cql_keyspace)
        monkeypatch.setenv(f"{ENV_PREFIX}CQL_CONSISTENCY", cql.cql_consistency)
    else:
        monkeypatch.setenv(f"{ENV_PREFIX}SESSION_STORE", "sqlite")
    return load_settings()


@pytest.fixture
def log(settings: Settings) -> Iterator[AuditLog]:
    opened = open_audit_log(settings)
    yield opened
    opened.close()


def listed(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    capsys.readouterr()
    assert main(["audit", "list", *args]) == 0
    return capsys.readouterr().out.splitlines()


def test_operators_commands_are_audited_and_verify(
    settings: Settings, log: AuditLog, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "rotate-kek"]) == 0
    assert main(["token", "--scope", "ingest", "--user", "label-a"]) == 0
    assert main(["plays", "recount", "--track", "trk1", "--day", "2023-11-14"]) == 0
    lines = listed(capsys)
    assert [line.split()[1] for line in lines] == [
        "kek.rotated",
        "admin.token_minted",
        "admin.plays_recount",
    ]
    assert "ingest:label-a" in lines[1] and "track:trk1" in lines[2]
    assert listed(capsys, "--kind", "kek.rotated")[0].split()[1] == "kek.rotated"
    assert listed(capsys, "--actor", "nobody") == []
    assert len(listed(capsys, "--since", "2000-01-01")) == 3
    assert listed(capsys, "--since", "2999-01-01") == []

    assert main(["audit", "verify"]) == 0
    assert capsys.readouterr().out == "audit log intact: 3 entries in 1 streams\n"


def test_verify_names_the_first_broken_entry(
    settings: Settings, log: AuditLog, capsys: pytest.CaptureFixture[str]
) -> None:
    for user in ("a", "b", "c", "d"):
        assert main(["token", "--user", user]) == 0
    [stream] = log.streams()
    edit_actor(log, stream, 3, "cli:mallory@host")
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert f"broken [edited] {stream}#3: its fields do not match its hash" in out
    assert "audit log BROKEN: 1 of 1 streams damaged (2 entries checked)" in out


def test_verify_names_a_reordering(
    settings: Settings, log: AuditLog, capsys: pytest.CaptureFixture[str]
) -> None:
    for user in ("a", "b", "c"):
        assert main(["token", "--user", user]) == 0
    [stream] = log.streams()
    swap_entries(log, stream, 1, 2)
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1
    assert f"broken [reordered] {stream}#1: the entry written as seq 2 lies here" in (
        capsys.readouterr().out
    )


def test_verify_since_checks_from_then_on(
    settings: Settings, log: AuditLog, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token"]) == 0
    capsys.readouterr()
    assert main(["audit", "verify", "--since", "2999-01-01T00:00"]) == 0
    assert "0 entries in 1 streams since 2999-01-01T00:00:00+00:00" in capsys.readouterr().out


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["audit", "list", "--kind", "key.stolen"])
    assert exited.value.code == 2
    with pytest.raises(SystemExit):
        main(["audit", "verify", "--since", "yesterday"])
    assert "'yesterday' is not a day (YYYY-MM-DD) or an ISO 8601 time" in capsys.readouterr().err


def test_a_command_run_while_the_store_is_down_is_spooled_then_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(f"{ENV_PREFIX}CONFIG", raising=False)
    monkeypatch.setenv(f"{ENV_PREFIX}DATA_DIR", str(tmp_path))
    monkeypatch.setenv(f"{ENV_PREFIX}SESSION_STORE", "sqlite")
    blocker = tmp_path / "sessions.sqlite3"
    blocker.mkdir()  # the store's file cannot be opened
    assert main(["keys", "rotate-kek"]) == 0  # the rotation is done; its entry is on disk
    assert "the audit log is unavailable; 1 entries spooled" in capsys.readouterr().err
    assert len(list((tmp_path / AUDIT_SPOOL_DIR).iterdir())) == 1
    blocker.rmdir()
    assert main(["token"]) == 0  # the next command writes its own, then the spooled one
    assert list((tmp_path / AUDIT_SPOOL_DIR).iterdir()) == []
    kinds = {line.split()[1] for line in listed(capsys)}
    assert kinds == {AuditAction.KEK_ROTATED.value, AuditAction.TOKEN_MINTED.value}
    assert main(["audit", "verify"]) == 0


@pytest.mark.services
def test_db_migrate_is_audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    AUDIT_LOGS["scylla"](tmp_path).close()  # empties the audit tables for this test
    cql = shared_test_keyspace().settings
    for name, value in {
        "DATA_DIR": str(tmp_path),
        "SESSION_STORE": "scylla",
        "CQL_HOSTS": cql.cql_hosts,
        "CQL_PORT": str(cql.cql_port),
        "CQL_KEYSPACE": cql.cql_keyspace,
        "CQL_CONSISTENCY": cql.cql_consistency,
    }.items():
        monkeypatch.setenv(f"{ENV_PREFIX}{name}", value)
    monkeypatch.delenv(f"{ENV_PREFIX}CONFIG", raising=False)
    assert main(["db", "migrate"]) == 0  # already migrated: nothing applied, still audited
    [line] = listed(capsys, "--kind", "admin.db_migrate")
    assert f"keyspace:{cql.cql_keyspace}" in line and '"applied":[]' in line


def test_verify_after_rotating_the_token_secret_takes_the_retired_one(
    settings: Settings,
    log: AuditLog,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    retired, current = "r" * 40, "c" * 40
    monkeypatch.setenv(f"{ENV_PREFIX}TOKEN_SECRET", retired)
    for user in ("a", "b"):
        assert main(["token", "--user", user]) == 0
    monkeypatch.setenv(f"{ENV_PREFIX}TOKEN_SECRET", current)  # the rotation
    assert main(["token", "--user", "c"]) == 0
    capsys.readouterr()
    assert main(["audit", "verify"]) == 1
    assert "STREAMER_PREVIOUS_TOKEN_SECRETS" in capsys.readouterr().out
    monkeypatch.setenv(f"{ENV_PREFIX}PREVIOUS_TOKEN_SECRETS", retired)
    assert main(["audit", "verify"]) == 0
    assert capsys.readouterr().out.startswith("audit log intact: 3 entries")
    monkeypatch.setenv(f"{ENV_PREFIX}PREVIOUS_TOKEN_SECRETS", f"{retired},short")
    assert main(["audit", "verify"]) == 2
    assert "secret 2 has 5 characters" in capsys.readouterr().err
