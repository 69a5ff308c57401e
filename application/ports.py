"""Ports: what the application needs from the outside world, as Protocols.

Adapters in ``infrastructure`` implement them (litellm for the model, Docker or
the host for compute); tests can plug in their own. The application only ever
speaks these types.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

import msgspec

from agentjournal.domain import AgentJournalError, AssistantMessage, ComputeBinding, FileState, Message, Usage
from agentjournal.domain.memory import MemoryQuota


class ToolSpec(msgspec.Struct, frozen=True):
    """A tool offered to the model: a name, what it does, and a JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, object]


class TextDelta(msgspec.Struct, frozen=True):
    """A piece of the assistant's text, as it streams in."""

    text: str


class ModelReply(msgspec.Struct, frozen=True):
    """The whole of one model response: its message (text and tool calls) and usage.
    ``cost_usd`` is what that usage costs at the adapter's known prices, None when it
    knows no price for the model (unknown, which is not free)."""

    message: AssistantMessage
    usage: Usage
    model: str
    finish_reason: str = ""
    cost_usd: float | None = None


class ModelError(AgentJournalError):
    """A model call failed. ``retryable`` says whether trying again may help. ``partial``
    is the text of the reply that had already reached the caller when it failed: the
    session service sets it, and the turn's failure records it."""

    def __init__(
        self, message: str, *, retryable: bool = False, status_code: int | None = None, partial: str = ""
    ):
        super().__init__(message)
        self.retryable = retryable
        self.status_code = status_code
        self.partial = partial


class ModelSetupError(ModelError):
    """The model cannot be reached as set up: no provider for its name, no key where the
    provider needs one, refused credentials, an ``api_base`` that does not answer. Never
    retried: trying again cannot help."""


class ModelRetryWarning(UserWarning):
    """A model call failed in a way that may pass, and is being tried again: shown as it
    happens, so a wait is never silent."""


@runtime_checkable
class LanguageModel(Protocol):
    """Streams one completion: zero or more :class:`TextDelta`, then one :class:`ModelReply`."""

    def stream(
        self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> Iterator[TextDelta | ModelReply]: ...


class ExecResult(msgspec.Struct, frozen=True):
    output: str
    exit_code: int | None
    duration_ms: float
    truncated: bool = False
    timed_out: bool = False


class FileEntry(msgspec.Struct, frozen=True):
    path: str
    kind: str
    size: int


class FileListing(msgspec.Struct, frozen=True):
    """The files a listing found, by path relative to the work folder, and whether there
    were more than were returned."""

    entries: tuple[FileEntry, ...]
    more: bool = False


class PathMatches(msgspec.Struct, frozen=True):
    """What a glob found: paths relative to the work folder, newest first (a folder's
    ending in ``/``), and whether there were more than were returned."""

    paths: tuple[str, ...]
    more: bool = False


class LineMatch(msgspec.Struct, frozen=True):
    """One line a search found: its file (relative to the work folder), its number
    (from 1), and its text (a long line cut short)."""

    path: str
    line: int
    text: str


class LineMatches(msgspec.Struct, frozen=True):
    """What a grep found, in path order, and whether there were more than were returned."""

    matches: tuple[LineMatch, ...]
    more: bool = False


class WebPage(msgspec.Struct, frozen=True):
    """A fetched web page: where it ended up after redirects, its HTTP status, its media
    type and character set as the server named them, and its body (cut short when
    ``truncated``)."""

    url: str
    status: int
    content_type: str
    body: bytes
    charset: str = ""
    truncated: bool = False


class SnapshotLimits(msgspec.Struct, frozen=True):
    """What a workspace snapshot leaves out: files and folders whose name matches one of
    ``ignore`` (``fnmatch`` patterns), and the contents (not the hash and size) of files
    over ``max_file_bytes``."""

    ignore: tuple[str, ...]
    max_file_bytes: int


class WorkspaceScan(msgspec.Struct, frozen=True):
    """A work folder as a snapshot found it: every regular file, by path relative to the
    work folder, and the contents of those whose hash the caller did not already know."""

    files: dict[str, FileState]
    contents: dict[str, bytes]


class FileContents(msgspec.Struct, frozen=True):
    """A file to put in a work folder: where (relative to it), its permission bits, its bytes."""

    path: str
    mode: int
    data: bytes


class ComputeError(AgentJournalError):
    """A compute operation was refused or failed (bad path, missing file, engine down)."""


@runtime_checkable
class Compute(Protocol):
    """Where tools run. Paths are relative to the work folder, or absolute inside it."""

    kind: str

    def attach(self, session_id: UUID, previous: ComputeBinding | None) -> ComputeBinding:
        """Make ready the sandbox of ``session_id``: re-attach to ``previous`` if it still
        exists, provision a new one otherwise. Returns what to record so a later process
        can find it again."""
        ...

    def execute(self, command: str, timeout: float) -> ExecResult: ...

    def read_file(self, path: str) -> bytes: ...

    def write_file(self, path: str, data: bytes) -> None: ...

    def list_files(self, path: str, limit: int) -> FileListing:
        """The regular files under folder ``path``, at most ``limit`` of them, and whether
        there were more."""
        ...

    def glob(self, pattern: str, path: str, limit: int, timeout: float) -> PathMatches:
        """The files and folders under folder ``path`` whose paths from it match the
        doublestar ``pattern``, newest first, at most ``limit`` of them. Links are neither
        followed nor listed. Runs in one step where the tools run, for at most ``timeout``
        seconds; ``pattern`` is data, never part of a command line."""
        ...

    def grep(self, pattern: str, path: str, limit: int, timeout: float) -> LineMatches:
        """The lines matching the regular expression ``pattern`` (Python's syntax) in file
        ``path`` or in the files under folder ``path``, at most ``limit`` of them, skipping
        binary files; bounded and confined as :meth:`glob` is."""
        ...

    def fetch(self, url: str, limit: int, timeout: float) -> WebPage:
        """GET the http or https ``url`` from where the tools run, so with their network
        and nothing of the engine's: at most ``limit`` bytes of body, in at most
        ``timeout`` seconds. An HTTP error status is a page; no answer is a ComputeError."""
        ...

    def snapshot(self, known: Mapping[str, str], limits: SnapshotLimits) -> WorkspaceScan:
        """Every regular file of the work folder now (links and what ``limits`` ignores
        left out), and the contents of those whose hash differs from ``known`` (path to
        hash) and that are within ``limits``' size. Cheap when little changed: a file whose
        modification time, size and inode are as the last snapshot found them is not read."""
        ...

    def restore(self, files: Sequence[FileContents], remove: Sequence[str] = ()) -> None:
        """Delete the files at ``remove`` (those missing already are no matter) and the
        folders that leaves empty, then write each of ``files`` into the work folder with its
        mode, making folders on the way and replacing what is there (an empty folder
        included, so a file can take a folder's place and the reverse); never through a
        link. One step where the tools run."""
        ...

    def install_packages(self, manager: str, packages: Sequence[str]) -> str:
        """Install packages; return the installer's output. Raise ComputeError on failure."""
        ...

    def stop(self) -> None:
        """End every process the tools started here and that still runs (the turn lost its
        lease: whoever holds the session now must not find this turn still acting). The
        call running, if any, returns as a command killed would; later calls run as usual."""
        ...

    def release(self, binding: ComputeBinding) -> None:
        """Remove the sandbox ``binding`` names, and its files: its session has ended.
        Nothing happens if it is already gone."""
        ...


MEMORY_ROOT = "/mnt/memory"
"""Where memory stores are shown to a session's tools, one folder per store."""


@runtime_checkable
class MemoryFolders(Protocol):
    """A compute that shows memory stores to its tools at ``/mnt/memory/<slug>``, outside
    the work folder, read-only ones so from outside the sandbox (the tools cannot write
    them, whatever they run). Paths in the files are relative to the store's folder."""

    def show_memory(self, slug: str, read_only: bool, files: Mapping[str, bytes]) -> None:
        """Make the folder of ``slug`` hold exactly ``files`` from the next tool call on
        (the folder is made on first use; files not named are removed)."""
        ...

    def memory_files(self, slug: str, max_file_bytes: int, quota: MemoryQuota) -> dict[str, bytes | None]:
        """What the folder of ``slug`` holds now: each regular file's bytes (None for one
        larger than ``max_file_bytes``), never following a link. A folder of more regular
        files than ``quota.memories``, or whose files within ``max_file_bytes`` hold more
        than ``quota.total_bytes`` together, raises
        :class:`~agentjournal.domain.memory.MemoryQuotaExceeded`: sizes are looked at
        before contents are read, and no more than the bound (and one file) is held."""
        ...


@runtime_checkable
class MemoryContents(Protocol):
    """The contents of memory versions, sealed outside the log, keyed by version id, in
    the event store's own database (see :mod:`agentjournal.domain.memory`). Not the blob
    store: that one keeps a content once for every file that has it, so erasing one
    version's content there could erase a session's file, and keeping it would keep the
    secret. A body is encrypted with the store's cipher, if it has one."""

    def seal(self, store_id: UUID, contents: Mapping[str, str]) -> None:
        """Keep ``contents`` (by version id) of the store ``store_id``."""
        ...

    def get(self, version_ids: Iterable[str]) -> dict[str, str]:
        """The contents kept of these versions; an erased (or never kept) one is absent."""
        ...

    def erase(self, version_ids: Iterable[str]) -> None:
        """Remove these versions' contents, so that the database's files no longer hold
        them (as far as the database allows: see the implementations)."""
        ...


class BlobStore(Protocol):
    """File contents, each stored once under the SHA-256 of its bytes (hex), in the event
    store's own database. The log's ``WorkspaceChanged`` events name contents by these
    hashes, so identical files of any session, version or fork are stored once, and a
    session's files can be read back after its sandbox is gone."""

    def add(self, contents: Iterable[bytes]) -> int:
        """Store each of ``contents`` under its hash, unless already stored; return how
        many bytes were newly stored."""
        ...

    def get(self, digest: str) -> bytes:
        """The contents stored under ``digest``, checked against it: ``BlobMissing`` when
        there are none, ``BlobDamaged`` when they no longer match."""
        ...

    def stored(self, digests: Iterable[str]) -> set[str]:
        """Which of ``digests`` have contents stored."""
        ...


class Checkout(msgspec.Struct, frozen=True):
    """A repository as a clone checked it out: the commit, and every regular file of the
    work tree and of ``.git`` (paths relative to the clone), links left out."""

    commit: str
    files: list[FileContents]


class RepositoryCloner(Protocol):
    """Clones git repositories, with git itself, for sessions to mount."""

    def clone(self, url: str, token: str | None, branch: str = "", commit: str = "") -> Checkout:
        """The repository at ``url`` (http or https), at ``branch`` or ``commit`` (neither:
        its default branch). ``token`` authenticates the clone and goes nowhere else.
        ``RepositoryUnavailable`` when git cannot clone it."""
        ...


class McpTool(msgspec.Struct, frozen=True):
    """A tool an MCP server lists: its own name, description and input schema."""

    name: str
    description: str
    input_schema: dict[str, object]


class McpOutcome(msgspec.Struct, frozen=True):
    """What an MCP tool call gave back: its content as text, and whether it is an error."""

    text: str
    is_error: bool = False


class McpError(AgentJournalError):
    """An MCP server could not be used. ``kind`` names the cloud API's error:
    ``connection`` (unreachable, not an MCP server, refused by policy) or
    ``authentication`` (it refused the credential, or wants one)."""

    def __init__(self, message: str, kind: str = "connection") -> None:
        super().__init__(message)
        self.kind = kind


class McpClient(Protocol):
    """Speaks to one session's remote MCP servers (Streamable HTTP, legacy SSE as a
    fallback), keeping a connection to each between calls.

    ``token`` is the bearer credential for the server, if the session has one: it goes
    into the request's ``Authorization`` header and nowhere else. Both calls raise
    :class:`McpError` when the server cannot be used; a tool that fails is an outcome.
    """

    def list_tools(self, url: str, token: str | None) -> list[McpTool]: ...

    def call_tool(
        self, url: str, token: str | None, name: str, arguments: Mapping[str, object]
    ) -> McpOutcome: ...

    def close(self) -> None:
        """End the connections this client keeps (a later call opens them again)."""
        ...


class McpConnector(Protocol):
    """Hands out an :class:`McpClient` per session: the connections a session's client
    keeps to its servers are its own, since each session brings its own credentials."""

    def for_session(self) -> McpClient: ...

    def close(self) -> None:
        """End every connection of every client handed out."""
        ...


class OAuthGrant(msgspec.Struct, frozen=True):
    """What an OAuth token endpoint granted: a new access token, how long it lasts (if it
    says), and the refresh token to use next (when it rotates them)."""

    access_token: str
    expires_in: float | None = None
    refresh_token: str | None = None


class OAuthRefreshError(AgentJournalError):
    """The token endpoint refused to refresh, or could not be reached."""


class TokenEndpoint(Protocol):
    """Refreshes OAuth access tokens (RFC 6749 section 6) for ``mcp_oauth`` credentials."""

    def refresh(self, settings: Mapping[str, Any]) -> OAuthGrant:
        """A new access token from ``settings`` (the cloud API's ``refresh`` object:
        ``token_endpoint``, ``client_id``, ``refresh_token``, ``token_endpoint_auth``,
        ``scope``?, ``resource``?); :class:`OAuthRefreshError` when refused."""
        ...


class SecretBox(Protocol):
    """Seals secrets (vault credentials) with a key that never reaches the log: what it
    seals can be stored beside the log and opened only where the key is."""

    def seal(self, secret: bytes) -> bytes: ...

    def open(self, sealed: bytes) -> bytes:
        """The secret; :class:`SecretBoxError` when the key cannot open it."""
        ...


class SecretBoxError(AgentJournalError):
    """A sealed secret cannot be opened: another key sealed it, or it was changed."""
