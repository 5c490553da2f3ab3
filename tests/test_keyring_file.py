import base64
import json
import logging
import os
import stat
from pathlib import Path

import pytest

from drm import KeyRing, new_kek
from streamer.errors import ConfigError
from streamer.keyring_file import load_or_create_keyring, save_keyring


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_create_then_reload(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "secrets" / "nested" / "keyring.json"
    with caplog.at_level(logging.WARNING, logger="streamer.keyring_file"):
        ring = load_or_create_keyring(path)
    assert path.is_file()
    assert _mode(path) == 0o600
    assert len(ring.keys) == 1
    assert ring.active_id.startswith("kek-") and len(ring.active_id) == 12
    assert len(ring.active.secret) == 32
    assert "development key encryption key" in caplog.text
    assert ring.active_id in caplog.text
    assert ring.active.secret.hex() not in caplog.text
    assert base64.b64encode(ring.active.secret).decode() not in caplog.text
    assert sorted(p.name for p in path.parent.iterdir()) == ["keyring.json"]  # no temp files

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="streamer.keyring_file"):
        assert load_or_create_keyring(path) == ring
    assert caplog.text == ""


def test_file_format(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    ring = load_or_create_keyring(path)
    doc = json.loads(path.read_text())
    assert doc == {
        "active": ring.active_id,
        "keys": {ring.active_id: base64.b64encode(ring.active.secret).decode()},
    }


def test_existing_file_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    kek = new_kek("kek-mine")
    save_keyring(path, KeyRing(kek.kek_id, (kek,)))
    assert load_or_create_keyring(path).active == kek


def test_concurrent_creation_keeps_the_first_ring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process publishes its ring between our read and our link: we must adopt theirs.
    path = tmp_path / "keyring.json"
    theirs = new_kek("kek-theirs")
    real_link = os.link

    def racing_link(src: Path, dst: Path) -> None:
        save_keyring(path, KeyRing(theirs.kek_id, (theirs,)))
        real_link(src, dst)

    monkeypatch.setattr("streamer.keyring_file.os.link", racing_link)
    assert load_or_create_keyring(path).active == theirs
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keyring.json"]


def test_save_rotated_ring(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    ring = load_or_create_keyring(path).with_new_active(new_kek("kek-next"))
    save_keyring(path, ring)
    assert _mode(path) == 0o600
    assert load_or_create_keyring(path) == ring
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keyring.json"]


def test_save_fixes_mode_of_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    path.write_text("{}")
    path.chmod(0o644)
    kek = new_kek()
    save_keyring(path, KeyRing(kek.kek_id, (kek,)))
    assert _mode(path) == 0o600


def test_world_readable_file_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "keyring.json"
    ring = load_or_create_keyring(path)
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="streamer.keyring_file"):
        assert load_or_create_keyring(path) == ring
    assert "mode 644" in caplog.text


GOOD = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "is not valid UTF-8 JSON at line 1"),
        ("[]", 'exactly "active" and "keys"'),
        ('{"active": "kek-a"}', 'exactly "active" and "keys"'),
        ('{"active": 1, "keys": {}}', '"active" must be a KEK id string'),
        ('{"active": "kek-a", "keys": {}}', '"keys" must be a non-empty object'),
        ('{"active": "kek-a", "keys": {"kek-a": 5}}', "secret of KEK 'kek-a' is not a base64"),
        ('{"active": "kek-a", "keys": {"kek-a": "***"}}', "secret of KEK 'kek-a' is not a base64"),
        (
            '{"active": "kek-a", "keys": {"kek-a": "AAAA"}}',
            "KEK 'kek-a' secret is 3 bytes; AES-256-GCM needs 32",
        ),
        (f'{{"active": "kek-b", "keys": {{"kek-a": "{GOOD}"}}}}', "active KEK 'kek-b' is not in"),
        (f'{{"active": "k a", "keys": {{"k a": "{GOOD}"}}}}', "KEK id 'k a' is not"),
        (
            f'{{"active": "kek-a", "keys": {{"kek-a": "{GOOD}", "kek-a": "{GOOD}"}}}}',
            "names 'kek-a' twice",
        ),
    ],
)
def test_malformed_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "keyring.json"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(ConfigError) as info:
        load_or_create_keyring(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)
    assert GOOD not in str(info.value)
    assert path.read_text() == content  # a broken ring is reported, never overwritten


def test_invalid_utf8(tmp_path: Path) -> None:
    path = tmp_path / "keyring.json"
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ConfigError, match="not valid UTF-8 JSON"):
        load_or_create_keyring(path)


def test_path_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read key ring file"):
        load_or_create_keyring(tmp_path)
