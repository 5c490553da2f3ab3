"""`streamer plays recount`: a drifted play count repaired from the command line, in every
session store."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from streamer.errors import StorageError
from streamer.sessions.port import SessionStore
from streamer.settings import ENV_PREFIX
from streamer_app.cli import main
from tests.backends.cql_fixtures import shared_test_keyspace
from tests.backends.services import backend_params
from tests.contract.session_stores import DAY, SESSION_STORES, drift, play


@pytest.fixture(params=backend_params(SESSION_STORES))
def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SessionStore]:
    """A store, and the environment that makes `streamer` open the same one."""
    monkeypatch.delenv(f"{ENV_PREFIX}CONFIG", raising=False)
    monkeypatch.setenv(f"{ENV_PREFIX}DATA_DIR", str(tmp_path))
    opened = SESSION_STORES[request.param](tmp_path)
    if request.param == "scylla":
        settings = shared_test_keyspace().settings
        monkeypatch.setenv(f"{ENV_PREFIX}SESSION_STORE", "scylla")
        monkeypatch.setenv(f"{ENV_PREFIX}CQL_HOSTS", settings.cql_hosts)
        monkeypatch.setenv(f"{ENV_PREFIX}CQL_PORT", str(settings.cql_port))
        monkeypatch.setenv(f"{ENV_PREFIX}CQL_KEYSPACE", settings.cql_keyspace)
        monkeypatch.setenv(f"{ENV_PREFIX}CQL_CONSISTENCY", settings.cql_consistency)
    else:
        monkeypatch.setenv(f"{ENV_PREFIX}SESSION_STORE", "sqlite")
    yield opened
    with contextlib.suppress(StorageError):
        opened.close()


def test_a_tracks_drifted_day_is_repaired(
    store: SessionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    store.claim_plays([play("a"), play("b")])
    drift(store, "trk1", DAY, -1, marked=False)
    assert store.plays_by_day("trk1", DAY, DAY) == {DAY: 1}

    assert main(["plays", "recount", "--track", "trk1", "--day", DAY.isoformat()]) == 0
    out = capsys.readouterr().out
    assert "trk1 2023-11-14: 2 plays (the count said 1; corrected)" in out
    assert "recounted track trk1 on 2023-11-14: 1 corrected" in out
    assert store.plays_by_day("trk1", DAY, DAY) == {DAY: 2}

    assert main(["plays", "recount", "--track", "trk1", "--day", DAY.isoformat()]) == 0
    assert "trk1 2023-11-14: 2 plays\n" in capsys.readouterr().out


def test_the_counts_due_on_the_recent_days_are_repaired(
    store: SessionStore, capsys: pytest.CaptureFixture[str]
) -> None:
    today = datetime.now(UTC).date()
    days = (today, today - timedelta(days=30))
    store.claim_plays([play("a", day=days[0]), play("b", day=days[1]), play("c", day=days[1])])
    drift(store, "trk1", days[0], +3, marked=True)
    drift(store, "trk1", days[1], -2, marked=True)

    assert main(["plays", "recount"]) == 0  # --due, on every day a play may still land on
    out = capsys.readouterr().out
    assert f"trk1 {days[0]}: 1 plays (the count said 4; corrected)" in out
    assert f"trk1 {days[1]}: 2 plays (the count said 0; corrected)" in out
    assert out.endswith(f"on {today - timedelta(days=31)} to {today}: 2 corrected\n")
    assert store.plays_by_day("trk1", days[1], days[0]) == {days[0]: 1, days[1]: 2}
    assert main(["plays", "recount", "--day", days[0].isoformat()]) == 0
    assert capsys.readouterr().out == f"recounted the counts marked due on {days[0]}: 0 corrected\n"


def test_arguments_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plays", "recount", "--track", "trk1", "--due"]) == 2
    assert "not with --track" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["plays", "recount", "--day", "20231114"])
    assert "is not a day as YYYY-MM-DD" in capsys.readouterr().err
