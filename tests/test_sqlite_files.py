"""Many connections switching one new SQLite file to WAL at once all succeed."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from streamer.sqlite_files import enable_wal


def test_connections_opening_a_new_file_together_all_switch_it_to_wal(tmp_path: Path) -> None:
    for attempt in range(20):
        path = tmp_path / f"store-{attempt}.sqlite3"
        start = threading.Barrier(8)
        errors: list[BaseException] = []

        def open_store(
            path: Path = path,
            start: threading.Barrier = start,
            errors: list[BaseException] = errors,
        ) -> None:
            db = sqlite3.connect(path, timeout=5.0, isolation_level=None)
            try:
                start.wait()
                enable_wal(db, 5.0)
                db.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
            except BaseException as exc:  # the assertion below reports it
                errors.append(exc)
            finally:
                db.close()

        threads = [threading.Thread(target=open_store) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
