"""The `streamer` command as ingest teams and operators use it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamer.catalog import current_record_key, decode_track_record
from streamer.objects.local import LocalObjectStore
from streamer_app.cli import main
from tests.masters import make_master

pytestmark = pytest.mark.slow


def test_ingest_prints_a_summary_and_fails_when_any_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    masters = tmp_path / "masters"
    masters.mkdir()
    make_master(masters / "good.flac", seconds=3.0)
    (masters / "liner-notes.wav").write_text("not audio\n" * 20)
    (masters / "cover.jpg").write_bytes(b"\xff\xd8 not a master")  # not an audio suffix: skipped
    data = tmp_path / "data"
    status = main(["--data-dir", str(data), "ingest", str(masters)])
    out, err = capsys.readouterr()
    assert status == 1
    assert "good.flac" in out and "published" in out
    assert "liner-notes.wav" in out and "failed" in out
    assert "refused" in err and "[not_audio]" in err and "cover.jpg" not in out + err

    status = main(["--data-dir", str(data), "jobs"])
    listing = capsys.readouterr().out
    assert status == 0 and listing.count("\n") == 2
    assert "published" in listing and "not_audio" in listing


def test_ingest_with_track_id_and_metadata_then_rotate_the_kek(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    master = make_master(tmp_path / "song.wav", seconds=3.0)
    metadata = tmp_path / "meta.json"
    metadata.write_text(json.dumps({"title": "Song", "artist": "Band"}))
    data = tmp_path / "data"
    args = ["--data-dir", str(data), "ingest", str(master), "--track-id", "ISRC42", "--json"]
    assert main([*args, "--metadata", str(metadata)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["state"] == "published" and rows[0]["track_id"] == "ISRC42"
    store = LocalObjectStore(data / "objects")
    record = decode_track_record(store.get(current_record_key("ISRC42")))
    assert record.metadata == {"title": "Song", "artist": "Band"}

    assert main(["--data-dir", str(data), "keys", "rotate-kek"]) == 0
    assert "re-wrapped" in capsys.readouterr().out
    rotated = decode_track_record(store.get(current_record_key("ISRC42")))
    assert {k.kek_id for k in rotated.keys} != {k.kek_id for k in record.keys}
    ring = json.loads((data / "secrets" / "kek.json").read_text())
    assert ring["active"] == rotated.keys[0].kek_id and len(ring["keys"]) == 2


def test_track_id_needs_exactly_one_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = make_master(tmp_path / "a.flac", seconds=2.0)
    b = make_master(tmp_path / "b.flac", seconds=2.0)
    status = main(["--data-dir", str(tmp_path / "d"), "ingest", str(a), str(b), "--track-id", "x"])
    assert status == 2
    assert "--track-id needs exactly one file" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("scope", "audience"),
    [
        ("listener", "streamer-edge"),
        ("ingest", "streamer-ingest"),
        ("analytics", "streamer-analytics"),
        ("admin", "streamer-admin"),
    ],
)
def test_token_prints_a_development_token_for_each_scope(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], scope: str, audience: str
) -> None:
    import jwt

    from streamer.settings import load_settings
    from streamer.token_secrets import load_token_secrets

    data = tmp_path / "data"
    assert main(["--data-dir", str(data), "token", "--scope", scope, "--user", "u1"]) == 0
    token = capsys.readouterr().out.strip()
    key = load_token_secrets(load_settings(environ={}, data_dir=data)).platform_key
    claims = jwt.decode(token, key, algorithms=["HS256"], audience=audience)
    assert claims["sub"] == "u1"


def test_cleanup_uploads_on_the_local_store_has_nothing_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data-dir", str(tmp_path / "d"), "objects", "cleanup-uploads"]) == 0
    assert capsys.readouterr().out == "the local object store keeps no incomplete uploads\n"
    with pytest.raises(SystemExit):
        main(["--data-dir", str(tmp_path / "d"), "objects", "cleanup-uploads", "--older-than=-1"])
    assert "0 or more; got '-1'" in capsys.readouterr().err
