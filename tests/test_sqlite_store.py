"""A new SQLite store's file is made with pages sized for its rows; a store that exists
keeps the pages it has."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from agentjournal import SessionService
from agentjournal.domain import SessionConfig
from agentjournal.infrastructure.stores.sqlite import PAGE_SIZE

CONFIG = SessionConfig(model="m", system="s", name="pages", tools=())
LEGACY = Path(__file__).parent / "fixtures" / "sessionlog-0.1" / "sessions.db"


def pragma(path: Path, name: str) -> object:
    with sqlite3.connect(path) as db:
        return db.execute(f"PRAGMA {name}").fetchone()[0]


def test_a_new_store_file_gets_its_page_size_and_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    service = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)})
    session_id = service.create_session(CONFIG, title="t")
    service.close()
    assert pragma(path, "page_size") == PAGE_SIZE != 4096
    assert pragma(path, "journal_mode") == "wal"
    reopened = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)})
    assert reopened.get_session(session_id).title == "t"
    reopened.close()


def test_an_empty_file_counts_as_new(tmp_path: Path) -> None:
    path = tmp_path / "touched.db"
    path.touch()
    SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}).close()
    assert pragma(path, "page_size") == PAGE_SIZE


def test_an_existing_store_keeps_its_pages(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    shutil.copyfile(LEGACY, path)
    before = pragma(path, "page_size")
    service = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)})
    service.create_session(CONFIG, title="t")
    service.close()
    assert pragma(path, "page_size") == before == 4096
