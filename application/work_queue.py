"""Self-hosted environments: a work queue that Anthropic's own worker serves.

An environment ``{"type": "self_hosted"}`` runs no tools on the server. Its sessions'
built-in tool calls (Anthropic's toolset: :data:`WORKER_TOOLS`) are run by workers on
other machines: Anthropic's unmodified ``EnvironmentWorker`` polls the environment's
queue for a **work item** (one per session that needs a worker), claims it with a lease,
streams the session's events, runs each ``agent.tool_use`` in its own folder and posts
``user.tool_result`` back. The agent loop (the model) stays on the server: a turn that
calls such a tool records ``RemoteToolRequested``, offers the session's work item
(:meth:`WorkQueue.offer`) and pauses without a runner lease, as for a custom tool, until
a worker's result continues it, from whichever server process receives it.

**A work item's lease** is the idea of :mod:`~agentjournal.application.leases` (a holder,
an expiry, heartbeats, compare-and-set), kept beside the log in the store's own table,
never as events. The states are the cloud's:

``queued`` --poll--> (``queued``, delivered; delivered again after ``reclaim_older_than_ms``
unacknowledged) --ack--> ``starting`` --first heartbeat--> ``active`` --stop--> ``stopping``
(graceful) or ``stopped`` (forced).

A worker's heartbeat echoes the ``last_heartbeat`` it was given; a beat that does not
match (the item was reclaimed, another worker holds it) is refused with the item's
current state (HTTP 412), and the worker lets the item go. An item whose lease ran out
(a worker killed mid-command) is claimable again by the next poll, and the call still
open is run by the next worker: it reads the session's history and runs every
``agent.tool_use`` without a ``user.tool_result``.

Every change is a compare-and-set on the row's version (:class:`WorkRows`), so several
servers on one PostgreSQL store never hand one item to two workers.

**Worker keys** (:class:`WorkerKey`) are an environment's credentials for its workers:
minted here (the cloud mints them in its console), shown once, stored as SHA-256 digests
of high-entropy random text, revocable. A key opens only its environment's work and
sessions.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal, Protocol

import msgspec

from agentjournal.application.errors import ConfigError
from agentjournal.domain import AgentJournalError, SessionConfig

WORKER_COMPUTE = "self_hosted"
"""The compute a session in a self-hosted environment records: its tools run on workers."""

WORKER_TOOLS = ("bash", "read", "write", "edit", "glob", "grep")
"""The tools Anthropic's worker runs (its agent toolset). ``web_fetch`` and ``web_search``
run on the server, as in the cloud (:data:`SERVER_TOOLS`); custom tools are the client's,
as anywhere."""

SERVER_TOOLS = ("web_fetch", "web_search")
"""The rest of Anthropic's toolset: in a self-hosted environment's sessions the server runs them."""

DEFAULT_WORK_LEASE_SECONDS = 6.0
"""How long a work item's lease lasts without a heartbeat (the cloud's is minutes). The
worker beats every half lease, so a killed worker's item is claimable again within this
many seconds, and the next poll (every 1-3 s) takes it."""

WORK_LEASE_SECONDS_SETTING = "AGENTJOURNAL_WORK_LEASE_SECONDS"
"""The store setting (environment variable) that overrides :data:`DEFAULT_WORK_LEASE_SECONDS`."""

WORK_STORES = {
    "eventsourcing.sqlite": "agentjournal.infrastructure.stores.work.sqlite:SQLiteWorkRows",
    "eventsourcing.postgres": "agentjournal.infrastructure.stores.work.postgres:PostgresWorkRows",
}
"""The :class:`WorkRows` adapter for each persistence module, by topic."""

DEFAULT_WORKER_WAIT_SECONDS = 600.0
"""How long a turn waits for a worker to serve its session (none claimed the work, or the
one that did was lost and none took it over) before the turn is closed with that error."""

WORKER_WAIT_SECONDS_SETTING = "AGENTJOURNAL_WORKER_WAIT_SECONDS"
"""The store setting (environment variable) that overrides :data:`DEFAULT_WORKER_WAIT_SECONDS`."""

DEFAULT_RECLAIM_MS = 5000
"""A polled item not acknowledged within this long is delivered again (the API's default)."""

NO_HEARTBEAT = "NO_HEARTBEAT"
"""What a worker sends as ``expected_last_heartbeat`` before its first beat."""

KEY_PREFIX = "ajwk_"
"""How a worker key begins, so a server can tell one from an API key at a glance."""

WorkState = Literal["queued", "starting", "active", "stopping", "stopped"]
OPEN_STATES: tuple[WorkState, ...] = ("queued", "starting", "active")
"""States of an item that still serves (or will serve) its session: one per session at most."""


def runs_on_worker(config: SessionConfig, tool: str) -> bool:
    """Whether a call of ``tool`` in a session with this config is run by a worker."""
    return config.compute == WORKER_COMPUTE and tool in WORKER_TOOLS


def on_workers(recorded: SessionConfig, environment_id: str) -> SessionConfig:
    """``recorded`` as a session in the self-hosted environment ``environment_id`` keeps it:
    its tools on the environment's workers (and ``web_fetch``/``web_search`` on the server).
    Raises :class:`ConfigError` for what no worker has or does: the seed's own tools, and
    packages (a worker's machine has what its owner installed)."""
    others = [name for name in recorded.tools if name not in (*WORKER_TOOLS, *SERVER_TOOLS)]
    if others:
        raise ConfigError(
            f"tools {others} are not offered in a self-hosted environment: its workers run Anthropic's "
            f"toolset ({', '.join(WORKER_TOOLS)}), the server {' and '.join(SERVER_TOOLS)}; name them, "
            "or {'type': 'agent_toolset_20260401'} for all of them"
        )
    if any(recorded.packages.values()):
        raise ConfigError(
            "packages are not installed in a self-hosted environment: its workers' machines have "
            "what their owners installed there"
        )
    return msgspec.structs.replace(recorded, compute=WORKER_COMPUTE, environment_id=environment_id)


class NoWorkerCame(AgentJournalError):
    """A turn that runs where no client can continue it later (the Python API) waited the
    queue's whole ``worker_wait`` for a worker, and none answered."""

    def __init__(self, wait: float) -> None:
        super().__init__(
            f"no worker of the session's self-hosted environment answered its tool call within {wait:g} s: "
            "start a worker for the environment (see README, Tools on other machines), then prompt again"
        )


# -- the records ---------------------------------------------------------------------------


class WorkItem(msgspec.Struct, frozen=True, kw_only=True):
    """One session's claim on a worker. Times are seconds since the epoch by the store's
    clock; ``holder`` is the worker that claimed it (its ``Anthropic-Worker-ID``, after
    the id of the key it used), ``last_heartbeat`` the token its next beat must echo."""

    id: str
    environment_id: str
    session_id: str
    state: WorkState = "queued"
    created_at: float
    delivered_at: float | None = None
    acknowledged_at: float | None = None
    started_at: float | None = None
    latest_heartbeat_at: float | None = None
    last_heartbeat: str | None = None
    lease_expires_at: float = 0.0
    stop_requested_at: float | None = None
    stopped_at: float | None = None
    holder: str = ""
    metadata: dict[str, str] = {}


class WorkerKey(msgspec.Struct, frozen=True, kw_only=True):
    """A worker key as the store keeps it: its digest, never the key."""

    id: str
    environment_id: str
    digest: str
    name: str = ""
    hint: str = ""
    """The key's last four characters, to tell keys apart in a listing."""
    created_at: float
    revoked_at: float | None = None


class MintedKey(msgspec.Struct, frozen=True):
    """A key just minted: ``secret`` is shown this once and never stored."""

    key: WorkerKey
    secret: str


class Heartbeat(msgspec.Struct, frozen=True):
    """A heartbeat's answer, as the API's ``work_heartbeat``."""

    state: WorkState
    last_heartbeat: str | None
    lease_extended: bool
    ttl_seconds: float


class QueueStats(msgspec.Struct, frozen=True):
    depth: int
    """Items waiting for a worker (queued)."""
    pending: int
    """Items claimed and not yet stopped (starting, active, stopping)."""
    oldest_queued_at: float | None
    workers_polling: int
    """Distinct workers that polled in the last :data:`POLLING_WINDOW` seconds (this process)."""


POLLING_WINDOW = 30.0
MAX_POLLERS_KEPT = 10_000
"""Past this many remembered pollers, those not seen within :data:`POLLING_WINDOW` are forgotten."""


# -- errors ----------------------------------------------------------------------------


class WorkNotFound(AgentJournalError, LookupError):
    def __init__(self, work_id: str) -> None:
        super().__init__(f"work item {work_id} not found in this environment")
        self.work_id = work_id


class StaleHeartbeat(AgentJournalError):
    """A heartbeat that does not echo the item's last one: the lease is another's."""

    def __init__(self, current: Heartbeat) -> None:
        super().__init__(
            "the work item's lease is not yours: it was reclaimed or another worker holds it "
            f"(state {current.state}, last heartbeat {current.last_heartbeat!r})"
        )
        self.current = current


class WorkConflict(AgentJournalError):
    """A change the item's state does not allow (stopping a stopped item, acknowledging one
    not delivered)."""


class WorkerKeyRefused(AgentJournalError):
    """A worker key that is unknown or revoked (``status`` 401), or that opens another
    environment than the one asked for (403)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# -- the port --------------------------------------------------------------------------


class WorkRows(Protocol):
    """The store adapters' side: work items and worker keys beside the log, each row
    changed only by compare-and-set on its version."""

    def now(self) -> float:
        """The store's clock, in seconds since the epoch."""
        ...

    def insert(self, item: WorkItem) -> bool:
        """Add ``item``; False (nothing added) when its session already has an open item."""
        ...

    def get(self, work_id: str) -> tuple[WorkItem, int] | None:
        """The item and its row version."""
        ...

    def replace(self, item: WorkItem, version: int) -> bool:
        """Store ``item`` in place of the row at ``version``; False when the row moved on."""
        ...

    def claimable(self, environment_id: str, now: float, delivered_before: float, limit: int
                  ) -> list[tuple[WorkItem, int]]:  # fmt: skip
        """Items a poll may hand out, oldest first: queued and not delivered since
        ``delivered_before``, or claimed with a lease that ran out before ``now``."""
        ...

    def open_item(self, session_id: str) -> tuple[WorkItem, int] | None:
        """The session's open item (queued, starting or active), if any."""
        ...

    def latest(self, session_id: str) -> WorkItem | None:
        """The session's newest item, whatever its state (the one serving it, or the last that did)."""
        ...

    def page(self, environment_id: str, after: str | None, limit: int) -> list[WorkItem]:
        """The environment's items by id (ids grow with time), after ``after``."""
        ...

    def unserved(self, now: float) -> list[tuple[WorkItem, int]]:
        """Open items of every environment that no worker holds a live lease on."""
        ...

    def counts(self, environment_id: str) -> tuple[int, int, float | None]:
        """(queued, claimed and not stopped, when the oldest queued item was created)."""
        ...

    def add_key(self, key: WorkerKey) -> None: ...

    def key_with_digest(self, digest: str) -> WorkerKey | None: ...

    def keys(self, environment_id: str) -> list[WorkerKey]: ...

    def revoke_key(self, key_id: str, at: float) -> WorkerKey | None:
        """Mark the key revoked (once); the key, or None when there is none of that id."""
        ...


# -- the queue ---------------------------------------------------------------------------


def digest_of(secret: str) -> str:
    """How a key is stored: its SHA-256 (a random 256-bit key needs no slow hash)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_work_id(now: float) -> str:
    """``work_`` and a time-ordered hex id, so listing by id is listing by age."""
    return f"work_{int(now * 1_000_000):016x}{uuid.uuid4().hex[:16]}"


class WorkQueue:
    """The work items and worker keys of self-hosted environments (see the module)."""

    attempts = 20
    """Compare-and-set retries of one change before it gives up (another process won each)."""

    def __init__(
        self,
        rows: WorkRows,
        lease_seconds: float = DEFAULT_WORK_LEASE_SECONDS,
        worker_wait: float = DEFAULT_WORKER_WAIT_SECONDS,
    ) -> None:
        self.rows = rows
        self.lease_seconds = lease_seconds
        self.worker_wait = worker_wait
        self._polling: dict[tuple[str, str], float] = {}
        """When each (environment, worker) last polled this process, for :meth:`stats`."""
        self._polling_lock = threading.Lock()

    # -- keys

    def mint_key(self, environment_id: str, name: str = "") -> MintedKey:
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = WorkerKey(
            id=f"wkey_{uuid.uuid4().hex}", environment_id=environment_id, digest=digest_of(secret),
            name=name, hint=secret[-4:], created_at=self.rows.now(),
        )  # fmt: skip
        self.rows.add_key(key)
        return MintedKey(key, secret)

    def keys(self, environment_id: str) -> list[WorkerKey]:
        return self.rows.keys(environment_id)

    def revoke_key(self, environment_id: str, key_id: str) -> WorkerKey:
        key = next((k for k in self.rows.keys(environment_id) if k.id == key_id), None)
        if key is None:
            raise WorkNotFound(key_id)
        revoked = self.rows.revoke_key(key_id, self.rows.now())
        assert revoked is not None
        return revoked

    def key_for(self, secret: str) -> WorkerKey:
        """The live key ``secret`` is; :class:`WorkerKeyRefused` (401) otherwise."""
        key = self.rows.key_with_digest(digest_of(secret))
        if key is None or key.revoked_at is not None:
            raise WorkerKeyRefused("invalid worker key (unknown or revoked)", 401)
        return key

    # -- items

    def offer(self, environment_id: str, session_id: str) -> WorkItem:
        """The session's open item, queued now if it has none (a turn waits for a worker)."""
        for _ in range(self.attempts):
            found = self.rows.open_item(session_id)
            if found is not None:
                return found[0]
            now = self.rows.now()
            item = WorkItem(id=new_work_id(now), environment_id=environment_id, session_id=session_id,
                            created_at=now)  # fmt: skip
            if self.rows.insert(item):
                return item
        raise WorkConflict(f"could not queue work for session {session_id}")

    def worker_of(self, key: WorkerKey, session_id: str) -> str:
        """Who a worker holding ``key`` is, for a result it posts to ``session_id``: the
        holder of the session's open item when that came through the same key (the key's id
        and the worker's own name), else the key's id."""
        found = self.rows.open_item(session_id)
        if found is not None and found[0].holder.startswith(f"{key.id}/"):
            return found[0].holder
        return key.id

    def poll(self, environment_id: str, holder: str, reclaim_ms: int = DEFAULT_RECLAIM_MS) -> WorkItem | None:
        """Deliver the oldest claimable item to ``holder``, or None when there is none."""
        now = self.rows.now()
        with self._polling_lock:
            self._polling[(environment_id, holder)] = now
            if len(self._polling) > MAX_POLLERS_KEPT:
                self._polling = {k: at for k, at in self._polling.items() if at >= now - POLLING_WINDOW}
        for item, version in self.rows.claimable(environment_id, now, now - reclaim_ms / 1000, 8):
            delivered = msgspec.structs.replace(
                item, state="queued", delivered_at=now, holder=holder, last_heartbeat=None,
                acknowledged_at=None, lease_expires_at=0.0,
            )  # fmt: skip
            if self.rows.replace(delivered, version):
                return delivered
        return None

    def get(self, environment_id: str, work_id: str) -> WorkItem:
        found = self.rows.get(work_id)
        if found is None or found[0].environment_id != environment_id:
            raise WorkNotFound(work_id)
        return found[0]

    def ack(self, environment_id: str, work_id: str) -> WorkItem:
        """The delivered item is being started: ``starting``, with a lease."""

        def acknowledge(item: WorkItem, now: float) -> WorkItem:
            if item.state != "queued" or item.delivered_at is None:
                raise WorkConflict(
                    f"work item {work_id} is {item.state}, not delivered and waiting for an ack"
                )
            return msgspec.structs.replace(
                item, state="starting", acknowledged_at=now, lease_expires_at=now + self.lease_seconds
            )

        return self._change(environment_id, work_id, acknowledge)

    def heartbeat(self, environment_id: str, work_id: str, expected: str) -> Heartbeat:
        """Extend the lease of the worker that echoes the item's last heartbeat
        (:data:`NO_HEARTBEAT` before the first); :class:`StaleHeartbeat` for anyone else.
        A stopping or stopped item is not extended, and says so."""
        beat: list[Heartbeat] = []

        def renew(item: WorkItem, now: float) -> WorkItem:
            beat.clear()
            if item.state in ("stopping", "stopped"):
                beat.append(Heartbeat(item.state, item.last_heartbeat, False, self.lease_seconds))
                return item
            current = item.last_heartbeat or NO_HEARTBEAT
            if item.state == "queued" or expected != current or item.lease_expires_at <= now:
                raise StaleHeartbeat(Heartbeat(item.state, item.last_heartbeat, False, self.lease_seconds))
            token = stamp(now)
            beat.append(Heartbeat("active", token, True, self.lease_seconds))
            return msgspec.structs.replace(
                item, state="active", started_at=item.started_at or now, latest_heartbeat_at=now,
                last_heartbeat=token, lease_expires_at=now + self.lease_seconds,
            )  # fmt: skip

        self._change(environment_id, work_id, renew)
        return beat[0]

    def stop(self, environment_id: str, work_id: str, force: bool) -> WorkItem:
        """Ask the worker to finish (``stopping``), or end the item now (``stopped``)."""

        def halt(item: WorkItem, now: float) -> WorkItem:
            if item.state == "stopped":
                raise WorkConflict(f"work item {work_id} is already stopped")
            if force or item.state == "queued":
                return msgspec.structs.replace(
                    item, state="stopped", stopped_at=now, stop_requested_at=item.stop_requested_at or now,
                    lease_expires_at=0.0,
                )  # fmt: skip
            return msgspec.structs.replace(item, state="stopping", stop_requested_at=now)

        return self._change(environment_id, work_id, halt)

    def update_metadata(self, environment_id: str, work_id: str, patch: dict[str, str | None]) -> WorkItem:
        """Upsert the strings of ``patch`` into the item's metadata; a None deletes."""

        def patched(item: WorkItem, _now: float) -> WorkItem:
            metadata = dict(item.metadata)
            for name, value in patch.items():
                if value is None:
                    metadata.pop(name, None)
                else:
                    metadata[name] = value
            return msgspec.structs.replace(item, metadata=metadata)

        return self._change(environment_id, work_id, patched)

    def latest(self, session_id: str) -> WorkItem | None:
        """The session's newest work item (what its session page shows), or None."""
        return self.rows.latest(session_id)

    def page(self, environment_id: str, after: str | None, limit: int) -> tuple[list[WorkItem], str | None]:
        rows = self.rows.page(environment_id, after, limit + 1)
        return rows[:limit], rows[limit - 1].id if len(rows) > limit else None

    def stats(self, environment_id: str) -> QueueStats:
        depth, pending, oldest = self.rows.counts(environment_id)
        since = self.rows.now() - POLLING_WINDOW
        with self._polling_lock:
            polling = sum(
                1 for (env, _), at in self._polling.items() if env == environment_id and at >= since
            )
        return QueueStats(depth, pending, oldest, polling)

    def unserved_since(self, wait: float) -> list[WorkItem]:
        """Open items no worker has served for ``wait`` seconds: never acknowledged since
        they were queued, or their lease ran out that long ago."""
        now = self.rows.now()
        late = []
        for item, _ in self.rows.unserved(now):
            since = item.created_at if item.acknowledged_at is None else item.lease_expires_at
            if now - since >= wait:
                late.append(item)
        return late

    def _change(self, environment_id: str, work_id: str,
                change: Callable[[WorkItem, float], WorkItem]) -> WorkItem:  # fmt: skip
        """Apply ``change`` (which may raise) to the item as a compare-and-set, again on
        what another process stored when it won the race."""
        for _ in range(self.attempts):
            found = self.rows.get(work_id)
            if found is None or found[0].environment_id != environment_id:
                raise WorkNotFound(work_id)
            item, version = found
            changed = change(item, self.rows.now())
            if changed == item or self.rows.replace(changed, version):
                return changed
        raise WorkConflict(f"work item {work_id} changed too often to update; retry")


def stamp(now: float) -> str:
    """A heartbeat's token: the beat's time, to the microsecond, as the API writes times."""
    return datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")
