"""Opening a session store from what a caller names: the one step the command line's
reading commands share with the Python API, kept apart from the API so that reading a
log does not load the agent runtime (config, tools, model and compute wiring)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from agentjournal.application.service import SessionService


def open_store(store: str | os.PathLike[str] | Mapping[str, str] | SessionService | None) -> SessionService:
    """A session service on ``store``: an SQLite path, eventsourcing settings, a service
    to share, or None for the environment's settings or the default file."""
    if isinstance(store, SessionService):
        return store
    if store is None:
        return SessionService()
    if isinstance(store, Mapping):
        return SessionService(dict(store))
    path = Path(store).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)})
