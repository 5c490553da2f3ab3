"""The ObjectStore contract, run against every implementation in `conftest.OBJECT_STORES`."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from streamer.errors import InvalidObjectKey, ObjectNotFound, StorageError
from streamer.objects.port import IMMUTABLE, MAX_KEY_LENGTH, ObjectInfo, ObjectStore

M4S = "video/iso.segment"
JSON = "application/json"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Round trip, overwrite, stat


def test_put_then_get_returns_the_bytes(object_store: ObjectStore) -> None:
    object_store.put("tracks/t1/v1/seg-00001.m4s", b"segment bytes", M4S)
    assert object_store.get("tracks/t1/v1/seg-00001.m4s") == b"segment bytes"


def test_put_returns_what_stat_reports(object_store: ObjectStore) -> None:
    data = b"\x00\x01binary\xff" * 100
    info = object_store.put("tracks/t1/v1/init.mp4", data, "audio/mp4", IMMUTABLE)
    expected = ObjectInfo("tracks/t1/v1/init.mp4", len(data), sha256(data), "audio/mp4", IMMUTABLE)
    assert info == expected
    assert object_store.stat("tracks/t1/v1/init.mp4") == expected


def test_cache_control_is_optional(object_store: ObjectStore) -> None:
    object_store.put("a.json", b"{}", JSON)
    assert object_store.stat("a.json").cache_control is None


def test_empty_object(object_store: ObjectStore) -> None:
    info = object_store.put("empty", b"", "application/octet-stream")
    assert (info.size, info.etag) == (0, sha256(b""))
    assert object_store.get("empty") == b""
    assert object_store.get_range("empty", 0, 10) == b""


def test_overwrite_replaces_bytes_and_metadata(object_store: ObjectStore) -> None:
    object_store.put("tracks/t1/current.json", b'{"version": "v1"}', JSON, "no-cache")
    object_store.put("tracks/t1/current.json", b'{"version": "v22"}', "text/plain")
    assert object_store.get("tracks/t1/current.json") == b'{"version": "v22"}'
    assert object_store.stat("tracks/t1/current.json") == ObjectInfo(
        "tracks/t1/current.json", 18, sha256(b'{"version": "v22"}'), "text/plain", None
    )
    assert list(object_store.list("tracks/t1/")) == ["tracks/t1/current.json"]


# Ranges


@pytest.mark.parametrize(
    ("start", "length", "expected"),
    [
        (0, 4, b"0123"),
        (3, 4, b"3456"),
        (8, 2, b"89"),
        (8, 100, b"89"),  # past the end: what there is
        (10, 5, b""),  # at the end
        (50, 5, b""),  # beyond the end
        (4, 0, b""),
    ],
)
def test_get_range(object_store: ObjectStore, start: int, length: int, expected: bytes) -> None:
    object_store.put("r", b"0123456789", "application/octet-stream")
    assert object_store.get_range("r", start, length) == expected


@pytest.mark.parametrize(("start", "length"), [(-1, 2), (0, -1)])
def test_get_range_rejects_negative_numbers(
    object_store: ObjectStore, start: int, length: int
) -> None:
    object_store.put("r", b"0123456789", "application/octet-stream")
    with pytest.raises(ValueError, match="start >= 0 and length >= 0"):
        object_store.get_range("r", start, length)


# Listing

LISTED_KEYS = [
    "a",
    "a-c",
    "a.b",
    "a0",
    "ab",
    "b/x",
    "tracks/t1/current.json",
    "tracks/t1/v1/init.mp4",
    "tracks/t1/v1/seg-00001.m4s",
    "tracks/t1/v2/init.mp4",
    "tracks/t10/current.json",
    "tracks/t2/current.json",
]


@pytest.fixture
def listed(object_store: ObjectStore) -> ObjectStore:
    for key in reversed(LISTED_KEYS):  # insertion order must not matter
        object_store.put(key, key.encode(), "text/plain")
    return object_store


def test_list_everything_in_lexicographic_order(listed: ObjectStore) -> None:
    assert list(listed.list("")) == sorted(LISTED_KEYS) == LISTED_KEYS


def test_list_orders_separators_as_characters(object_store: ObjectStore) -> None:
    # "-" < "." < "/" < "0": a file system walk must not visit "a/" before "a-c" or "a.b".
    for key in ["a/x", "a-c", "a.b", "a0", "a/b/c", "a/b-c"]:
        object_store.put(key, b"", "text/plain")
    assert list(object_store.list("")) == ["a-c", "a.b", "a/b-c", "a/b/c", "a/x", "a0"]


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("tracks/t1/", LISTED_KEYS[6:10]),
        ("tracks/t1/v1/", LISTED_KEYS[7:9]),
        ("tracks/t1", LISTED_KEYS[6:11]),  # not a directory boundary: t10 matches too
        ("tracks/t1/v", LISTED_KEYS[7:10]),
        ("a", LISTED_KEYS[:5]),
        ("a.", ["a.b"]),
        ("b/", ["b/x"]),
        ("b/x", ["b/x"]),
        ("tracks/t1/current.json", ["tracks/t1/current.json"]),
        ("tracks/t1/current.json/", []),
        ("tracks/t3/", []),
        ("nothing", []),
    ],
)
def test_list_prefix(listed: ObjectStore, prefix: str, expected: list[str]) -> None:
    assert list(listed.list(prefix)) == expected


@pytest.mark.parametrize("prefix", ["../", "/", "/tracks", "tracks//", "./", "tracks/../", "é"])
def test_list_of_a_prefix_no_key_can_have_is_empty(listed: ObjectStore, prefix: str) -> None:
    assert list(listed.list(prefix)) == []


def test_list_of_an_empty_store(object_store: ObjectStore) -> None:
    assert list(object_store.list("")) == []
    assert list(object_store.list("tracks/")) == []


# Delete and missing objects


def test_delete_removes_and_is_idempotent(object_store: ObjectStore) -> None:
    object_store.put("tracks/t1/v1/a", b"a", "text/plain")
    object_store.put("tracks/t1/v1/b", b"b", "text/plain")
    object_store.delete("tracks/t1/v1/a")
    object_store.delete("tracks/t1/v1/a")
    object_store.delete("never/was/here")
    with pytest.raises(ObjectNotFound):
        object_store.get("tracks/t1/v1/a")
    with pytest.raises(ObjectNotFound):
        object_store.stat("tracks/t1/v1/a")
    assert list(object_store.list("")) == ["tracks/t1/v1/b"]


def test_put_after_delete(object_store: ObjectStore) -> None:
    object_store.put("k", b"one", "text/plain")
    object_store.delete("k")
    object_store.put("k", b"two", "text/plain")
    assert object_store.get("k") == b"two"
    assert object_store.stat("k").etag == sha256(b"two")


@pytest.mark.parametrize("key", ["missing", "tracks/t9/current.json", "tracks"])
def test_missing_object_raises_object_not_found(object_store: ObjectStore, key: str) -> None:
    object_store.put("tracks/t1/current.json", b"{}", JSON)  # "tracks" is a prefix, not a key
    for read in (
        lambda: object_store.get(key),
        lambda: object_store.get_range(key, 0, 1),
        lambda: object_store.stat(key),
    ):
        with pytest.raises(ObjectNotFound) as caught:
            read()
        assert caught.value.key == key
        assert caught.value.http_status == 404


def test_missing_object_under_an_object(object_store: ObjectStore) -> None:
    object_store.put("tracks", b"a key, not a prefix", "text/plain")
    with pytest.raises(ObjectNotFound):
        object_store.get("tracks/t1/current.json")


# Hostile keys

HOSTILE_KEYS = [
    "",
    "../x",
    "a/../../x",
    "..",
    ".",
    "/abs",
    "/etc/passwd",
    "a//b",
    "a/./b",
    "a/",
    "a\\b",
    "a b",
    "a\x00b",
    "tracks/é",
    "トラック",
    "~user",
    "x" * (MAX_KEY_LENGTH + 1),
]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_hostile_keys_are_refused_by_every_method(
    object_store: ObjectStore, key: str, tmp_path: Path
) -> None:
    source = tmp_path / "source"
    source.write_bytes(b"x")
    calls: dict[str, Callable[[], object]] = {
        "get": lambda: object_store.get(key),
        "get_range": lambda: object_store.get_range(key, 0, 1),
        "stat": lambda: object_store.stat(key),
        "put": lambda: object_store.put(key, b"x", "text/plain"),
        "put_file": lambda: object_store.put_file(key, source, "text/plain"),
        "delete": lambda: object_store.delete(key),
    }
    for name, call in calls.items():
        with pytest.raises(InvalidObjectKey) as caught:
            call()
        assert caught.value.http_status == 400, name
    assert list(object_store.list("")) == []


def test_longest_valid_key(object_store: ObjectStore) -> None:
    # File systems cap a name at 255 bytes, so the long key is made of several parts.
    key = "/".join(["p" * 99] * 5) + "/" + "k" * (MAX_KEY_LENGTH - 500)
    assert len(key) == MAX_KEY_LENGTH
    object_store.put(key, b"long", "text/plain")
    assert object_store.get(key) == b"long"
    assert list(object_store.list("p")) == [key]


# Large files


@pytest.fixture
def master(tmp_path: Path) -> Path:
    """A few MB that are not a multiple of any plausible chunk size."""
    path = tmp_path / "master.wav"
    block = bytes(range(256)) * 4099
    with path.open("wb") as out:
        for index in range(7):
            out.write(bytes([index]) + block)
    return path


def test_put_file_stores_a_multi_megabyte_master(object_store: ObjectStore, master: Path) -> None:
    data = master.read_bytes()
    assert len(data) > 7_000_000
    info = object_store.put_file("masters/abc", master, "audio/wav")
    assert info == ObjectInfo("masters/abc", len(data), sha256(data), "audio/wav", None)
    assert object_store.stat("masters/abc") == info
    assert object_store.get("masters/abc") == data
    middle = 1024 * 1024 - 3  # straddles a 1 MiB boundary
    assert object_store.get_range("masters/abc", middle, 10) == data[middle : middle + 10]
    assert object_store.get_range("masters/abc", len(data) - 4, 100) == data[-4:]


def test_put_file_of_a_missing_source_is_a_storage_error(
    object_store: ObjectStore, tmp_path: Path
) -> None:
    with pytest.raises(StorageError, match="no-such-file") as caught:
        object_store.put_file("masters/abc", tmp_path / "no-such-file", "audio/wav")
    assert not isinstance(caught.value, ObjectNotFound)
    assert list(object_store.list("")) == []


# Atomicity


def test_readers_never_see_a_torn_object_during_overwrites(object_store: ObjectStore) -> None:
    versions = [bytes([65 + index]) * (100_000 + 7_919 * index) for index in range(3)]
    by_size = {len(data): data for data in versions}
    by_etag = {sha256(data): data for data in versions}
    key = "tracks/t1/current.json"
    object_store.put(key, versions[0], "application/x-v0")
    done = threading.Event()
    problems: list[str] = []

    def write() -> None:
        try:
            for round_ in range(60):
                index = round_ % len(versions)
                object_store.put(key, versions[index], f"application/x-v{index}")
        finally:
            done.set()

    def check_once() -> None:
        data = object_store.get(key)
        if data not in versions:
            problems.append(f"get returned {len(data)} bytes of no version")
        info = object_store.stat(key)
        version = by_etag.get(info.etag)
        if version is None or by_size.get(info.size) != version:
            problems.append(f"stat paired size {info.size} with etag {info.etag}")
        elif info.content_type != f"application/x-v{versions.index(version)}":
            problems.append(f"stat paired {info.content_type} with another version's bytes")
        part = object_store.get_range(key, 99_990, 20)
        if part not in {data[99_990:100_010] for data in versions}:
            problems.append(f"get_range returned {part!r}")

    def read() -> None:
        while not done.is_set():
            try:
                check_once()
            except Exception as exc:
                problems.append(f"read failed: {exc!r}")

    readers = [threading.Thread(target=read) for _ in range(3)]
    writer = threading.Thread(target=write)
    for thread in [*readers, writer]:
        thread.start()
    for thread in [writer, *readers]:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in [writer, *readers])
    assert problems == []
    assert list(object_store.list("")) == [key]
