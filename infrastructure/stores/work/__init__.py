"""Work items and worker keys of self-hosted environments
(:mod:`agentjournal.application.work_queue`) in the store's own database, beside the log.

Each row keeps the record as JSON (``body``) and, as columns, what the queries select
by; every change is a compare-and-set on the row's ``version``. A partial unique index
keeps one open item per session, so two servers offering work for one session at once
queue it once."""

import msgspec

from agentjournal.application.work_queue import OPEN_STATES, WorkerKey, WorkItem

ITEMS = "work_items_v1"
KEYS = "worker_keys_v1"
OPEN = ", ".join(f"'{state}'" for state in OPEN_STATES)
"""The open states as an SQL list (constants, never input)."""


def item_of(body: str | bytes) -> WorkItem:
    return msgspec.json.decode(body, type=WorkItem)


def key_of(body: str | bytes) -> WorkerKey:
    return msgspec.json.decode(body, type=WorkerKey)


def encoded(record: WorkItem | WorkerKey) -> str:
    return msgspec.json.encode(record).decode()
