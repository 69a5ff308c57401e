"""Errors in Anthropic's shape: ``{"type": "error", "error": {"type": ..., "message": ...}}``.

The SDK maps the status code to its exception class (401 ``AuthenticationError``,
404 ``NotFoundError`` ...) and shows the message, so the message says what was
wrong and, for a bad body, which field. Where the cloud API gives an error a code
(``details.error_code``, such as ``environment_archived``), the SDK picks a finer
class by it, and so is it given here.
"""

from __future__ import annotations

import logging
import uuid

from starlette.requests import Request
from starlette.responses import JSONResponse

from agentjournal.application.errors import (
    AgentJournalError,
    AgentNotFound,
    AgentVersionNotFound,
    AmbiguousSessionId,
    ConcurrentUpdate,
    ConfigError,
    ConfigTypeChange,
    EnvironmentNotFound,
    InvalidMetadata,
    RepositoryUnavailable,
    ResourceNotFound,
    SessionNotFound,
    StoredFileNotFound,
    UploadTooLarge,
    VersionNotFound,
)
from agentjournal.domain import (
    CatalogError,
    EnvironmentArchivedError,
    ManagedSandboxRequired,
    SessionBusy,
    SessionError,
    StaleVersion,
)
from agentjournal.domain.memory import MemoryPreconditionFailed

log = logging.getLogger(__name__)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
}


class ApiError(AgentJournalError):
    """An error to answer with: a status, and a message for the client to read."""

    def __init__(
        self, status: int, message: str, error_type: str | None = None, error_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or ERROR_TYPES.get(status, "api_error")
        self.error_code = error_code
        """The cloud API's ``details.error_code``, where it has one for this error."""


def not_found(what: str, given: str) -> ApiError:
    return ApiError(404, f"{what} {given!r} was not found")


def error_response(
    status: int, message: str, error_type: str | None = None, error_code: str | None = None
) -> JSONResponse:
    request_id = f"req_{uuid.uuid4().hex}"
    error: dict[str, object] = {
        "type": error_type or ERROR_TYPES.get(status, "api_error"),
        "message": message,
    }
    if error_code:
        error["details"] = {"error_code": error_code}
    headers = {"request-id": request_id}
    if status == 409:
        # The SDK retries a 409 unless told not to; a conflict answers the same again.
        headers["x-should-retry"] = "false"
    return JSONResponse({"type": "error", "error": error, "request_id": request_id}, status, headers)


EXPECTED_ERRORS: tuple[type[Exception], ...] = (AgentJournalError, ValueError)
"""The errors :func:`as_api_error` answers; anything else is a logged 500."""


def as_api_error(error: Exception) -> ApiError:
    """The HTTP answer to an error the application or domain raised."""
    if isinstance(error, ApiError):
        return error
    if isinstance(error, EnvironmentNotFound):
        return ApiError(404, str(error), error_code="environment_not_found")
    if isinstance(
        error,
        (
            SessionNotFound,
            VersionNotFound,
            AmbiguousSessionId,
            AgentNotFound,
            AgentVersionNotFound,
            StoredFileNotFound,
            ResourceNotFound,
        ),
    ) or (isinstance(error, AgentJournalError) and isinstance(error, LookupError)):
        return ApiError(404, str(error))
    if isinstance(error, UploadTooLarge):
        return ApiError(413, str(error))
    if isinstance(error, RepositoryUnavailable):  # the URL, checkout or token the client gave
        return ApiError(400, str(error))
    if isinstance(error, (ConcurrentUpdate, SessionBusy, StaleVersion, MemoryPreconditionFailed)):
        return ApiError(409, str(error))
    if isinstance(error, EnvironmentArchivedError):
        return ApiError(400, str(error), error_code="environment_archived")
    if isinstance(error, InvalidMetadata):
        return ApiError(400, str(error), error_code="invalid_metadata")
    if isinstance(error, ConfigTypeChange):
        return ApiError(400, str(error), error_code="invalid_config_type_change")
    if isinstance(error, (ConfigError, ManagedSandboxRequired, SessionError, CatalogError, ValueError)):
        return ApiError(400, str(error))
    if isinstance(error, AgentJournalError):  # a store, model or compute that failed: the server's trouble
        log.error("%s", error)
        return ApiError(500, str(error))
    raise error


async def handle_api_error(request: Request, error: Exception) -> JSONResponse:
    try:
        api_error = as_api_error(error)
    except Exception:  # noqa: BLE001 - anything else is the server's fault, logged whole
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, "internal server error; the server's log has the details")
    return error_response(api_error.status, api_error.message, api_error.error_type, api_error.error_code)


async def handle_http_exception(request: Request, error: Exception) -> JSONResponse:
    status = int(getattr(error, "status_code", 500))
    if status == 404:
        return error_response(404, f"no route for {request.method} {request.url.path}")
    if status == 405:
        return error_response(405, f"{request.method} is not allowed on {request.url.path}")
    return error_response(status, str(getattr(error, "detail", "")) or "error")
