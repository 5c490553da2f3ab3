"""What only the local object store promises: plain files, sidecars, crash leftovers."""

from __future__ import annotations

import hashlib
import shutil
import tracemalloc
from pathlib import Path

import pytest

from streamer.errors import ObjectNotFound, StorageError
from streamer.objects.local import LocalObjectStore
from streamer.objects.port import ObjectInfo


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "objects"


@pytest.fixture
def store(root: Path) -> LocalObjectStore:
    return LocalObjectStore(root)


def names(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


def test_objects_are_plain_files(store: LocalObjectStore, root: Path) -> None:
    store.put("tracks/t1/v1/seg-00001.m4s", b"segment", "video/iso.segment")
    assert (root / "tracks/t1/v1/seg-00001.m4s").read_bytes() == b"segment"


def test_an_overwrite_leaves_one_body_and_one_sidecar(store: LocalObjectStore, root: Path) -> None:
    for version in range(4):
        store.put("tracks/t1/current.json", f'{{"v": {version}}}'.encode(), "application/json")
    files = names(root / "tracks/t1")
    assert files[0] == "current.json"
    assert len(files) == 2 and files[1].startswith("current.json~")


def test_delete_removes_the_sidecar(store: LocalObjectStore, root: Path) -> None:
    store.put("a/b", b"x", "text/plain")
    store.delete("a/b")
    assert names(root / "a") == []


def test_leftovers_of_a_crashed_put_are_invisible(store: LocalObjectStore, root: Path) -> None:
    store.put("tracks/t1/current.json", b"{}", "application/json")
    directory = root / "tracks/t1"
    (directory / "current.json~0123abcd.tmp").write_bytes(b"half a bo")
    (directory / "current.json~999-999.json").write_text('{"etag": "stale"')
    (directory / "new.json~4567.tmp").write_bytes(b"never renamed")
    (directory / "stray file").write_bytes(b"not ours")
    assert list(store.list("")) == ["tracks/t1/current.json"]
    assert store.stat("tracks/t1/current.json").etag == hashlib.sha256(b"{}").hexdigest()
    with pytest.raises(ObjectNotFound):
        store.get("tracks/t1/new.json")


def test_a_failed_put_leaves_nothing_behind(store: LocalObjectStore, root: Path) -> None:
    store.put("a/b", b"old", "text/plain")
    with pytest.raises(TypeError):
        store.put("a/b", "not bytes", "text/plain")  # type: ignore[arg-type]
    assert store.get("a/b") == b"old"
    assert len(names(root / "a")) == 2  # the body and its sidecar


def test_a_copied_tree_adopts_its_sidecars(store: LocalObjectStore, root: Path) -> None:
    store.put("a/b", b"first", "text/plain", "no-cache")
    store.put("a/b", b"second", "audio/mp4")  # the first sidecar is retired, not reused
    shutil.copytree(root, root.parent / "copy")  # new inodes, so no sidecar stamp matches
    copy = LocalObjectStore(root.parent / "copy")
    expected = ObjectInfo("a/b", 6, hashlib.sha256(b"second").hexdigest(), "audio/mp4", None)
    assert copy.stat("a/b") == expected
    assert len(names(root.parent / "copy" / "a")) == 3  # adopted under the new stamp
    assert copy.stat("a/b") == expected


def test_a_body_without_any_sidecar_is_a_storage_error(store: LocalObjectStore, root: Path) -> None:
    (root / "dropped").parent.mkdir(parents=True)
    (root / "dropped").write_bytes(b"copied in by hand")
    assert store.get("dropped") == b"copied in by hand"
    with pytest.raises(StorageError, match=r"'dropped'.*no metadata sidecar"):
        store.stat("dropped")


def test_a_key_that_is_also_a_directory_cannot_be_stored(store: LocalObjectStore) -> None:
    store.put("a/b", b"x", "text/plain")
    with pytest.raises(StorageError, match="cannot put object 'a'") as caught:
        store.put("a", b"y", "text/plain")
    assert not isinstance(caught.value, ObjectNotFound)
    with pytest.raises(StorageError, match="cannot put object 'a/b/c'"):
        store.put("a/b/c", b"z", "text/plain")
    assert list(store.list("")) == ["a/b"]
    store.delete("a")  # a directory of keys, not an object: nothing to delete
    assert store.get("a/b") == b"x"


def test_os_errors_become_storage_errors_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_bytes(b"")
    store = LocalObjectStore(tmp_path / "not-a-dir")
    with pytest.raises(StorageError, match=r"'tracks/t1/current\.json'") as caught:
        store.put("tracks/t1/current.json", b"{}", "application/json")
    assert caught.value.http_status == 503


def test_a_missing_root_is_an_empty_store(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "nowhere")
    assert list(store.list("")) == []
    with pytest.raises(ObjectNotFound):
        store.stat("a")
    store.delete("a")
    assert not (tmp_path / "nowhere").exists()


def test_put_file_streams_instead_of_loading_the_file(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    master = tmp_path / "master.wav"
    with master.open("wb") as out:
        for index in range(24):
            out.write(bytes([index]) * 1024 * 1024)
    tracemalloc.start()
    try:
        info = store.put_file("masters/m", master, "audio/wav")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.size == 24 * 1024 * 1024
    assert peak < 4 * 1024 * 1024, f"put_file of 24 MiB peaked at {peak} bytes"
