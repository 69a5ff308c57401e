"""Errors the application raises for bad input: each says what was wrong and what to do.
All derive from :class:`AgentJournalError`, the domain's root of every error agentjournal
raises on purpose, which is importable from here too."""

from __future__ import annotations

from uuid import UUID

from agentjournal.domain.errors import AgentJournalError as AgentJournalError


class ConfigError(AgentJournalError, ValueError):
    """A configuration value is unknown, of the wrong type or out of range."""


class UnsupportedProvider(ConfigError):
    pass


class InvalidMetadata(ConfigError):
    """Metadata with too many keys, or a key or value too long."""


class ConfigTypeChange(ConfigError):
    """An environment's config type (cloud, self_hosted) cannot change after creation."""


class AgentNotFound(AgentJournalError, LookupError):
    def __init__(self, agent_id: UUID | str) -> None:
        super().__init__(f"no agent {agent_id} in this store")
        self.agent_id = agent_id


class AgentVersionNotFound(AgentJournalError, LookupError):
    def __init__(self, agent_id: UUID, version: int, latest: int) -> None:
        super().__init__(f"agent {agent_id} has no version {version}: its versions are 1 to {latest}")
        self.agent_id = agent_id
        self.version = version
        self.latest = latest


class EnvironmentNotFound(AgentJournalError, LookupError):
    def __init__(self, environment_id: UUID | str) -> None:
        super().__init__(f"no environment {environment_id} in this store")
        self.environment_id = environment_id


class StoredFileNotFound(AgentJournalError, LookupError):
    """No uploaded file with this id, or it was deleted."""

    def __init__(self, file_id: UUID | str) -> None:
        super().__init__(f"no file {file_id} in this store")
        self.file_id = file_id


class ResourceNotFound(AgentJournalError, LookupError):
    """The session has no resource with this id (or it was removed)."""

    def __init__(self, session_id: UUID, resource_id: str) -> None:
        super().__init__(f"session {session_id} has no resource {resource_id!r}")


class RepositoryUnavailable(AgentJournalError):
    """git could not clone a repository, or check out what was asked, with what it was given."""


class UploadTooLarge(AgentJournalError):
    """An upload grew past the store's limit; nothing of it was recorded."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is over the upload limit of {limit} bytes")
        self.limit = limit


class SessionNotFound(AgentJournalError, LookupError):
    def __init__(self, session_id: UUID | str) -> None:
        super().__init__(f"no session {session_id} in this store")
        self.session_id = session_id


class AmbiguousSessionId(AgentJournalError, LookupError):
    def __init__(self, prefix: str, matches: int) -> None:
        super().__init__(f"{matches} or more sessions start with {prefix!r}; give more of the id")
        self.prefix = prefix


class VersionNotFound(AgentJournalError, LookupError):
    def __init__(self, session_id: UUID, version: int, latest: int) -> None:
        super().__init__(
            f"session {session_id} has no event {version}: its events are numbered 1 to {latest}"
        )
        self.session_id = session_id
        self.version = version
        self.latest = latest


class InvalidSessionId(AgentJournalError, ValueError):
    def __init__(self, text: object) -> None:
        super().__init__(
            f"{text!r} is not a session id (a UUID such as 1b4e28ba-2fa1-11d2-883f-0016d3cca427, "
            "or the API's sesn_1b4e28ba2fa111d2883f0016d3cca427)"
        )


class StoreError(AgentJournalError):
    """The store cannot be used: not a database, another program's, or damaged."""


class FileNotRecorded(AgentJournalError, LookupError):
    """The work folder as of that version has no file there whose contents were kept."""

    def __init__(self, path: str, version: int, why: str = "no such file") -> None:
        super().__init__(f"{path!r} as of event {version}: {why}")
        self.path = path
        self.version = version


class BlobMissing(AgentJournalError, LookupError):
    """The blob store has no contents under this hash."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"no stored file contents with hash {digest}")
        self.digest = digest


class BlobDamaged(AgentJournalError):
    """Stored contents no longer match the hash they are stored under: changed in the store."""

    def __init__(self, digest: str) -> None:
        super().__init__(f"the stored file contents with hash {digest} do not match that hash")
        self.digest = digest


class ConcurrentUpdate(AgentJournalError):
    """Another process appended to the session first (another turn, or an interrupt);
    the step this process was saving was not recorded."""

    def __init__(self, session_id: UUID) -> None:
        super().__init__(
            f"session {session_id} was changed by another process meanwhile (another turn, or an "
            "interrupt); the step being saved here was not recorded: reload the session and try again"
        )
        self.session_id = session_id


class LeaseLost(AgentJournalError):
    """The turn's lease ran out or was taken (its heartbeats failed, or another process
    closed the turn as orphaned): the turn stopped and its tools' processes were ended."""

    def __init__(self, session_id: UUID) -> None:
        super().__init__(f"session {session_id}: this process lost the turn's lease and stopped the turn")
        self.session_id = session_id


SESSION_ID_PREFIX = "sesn_"
"""What the API and the page put before a session's UUID (as hex): ``sesn_`` + 32 hex
digits. Wherever a session id is taken, this form is taken too, so an id copied from the
page or the API works in the command line and the Python API."""


def parse_session_id(text: object) -> UUID:
    """A session's UUID from the UUID itself, its text (with or without dashes) or the
    API's form (``sesn_`` + its hex)."""
    if isinstance(text, UUID):
        return text
    try:
        given = str(text).strip()
        prefixed = given[: len(SESSION_ID_PREFIX)].lower() == SESSION_ID_PREFIX
        return UUID(given[len(SESSION_ID_PREFIX) :] if prefixed else given)
    except ValueError:
        raise InvalidSessionId(text) from None
