"""Request bodies: bounded, JSON, and checked against a msgspec Struct.

A body over the limit is refused (413) while it is still arriving, so a client
cannot make the server hold more than the limit in memory, and one that takes
longer than the client timeout to arrive is refused too (408), so a client cannot
hold a connection open by sending it slowly. A body that is not
what the endpoint takes is a 400 naming the field (msgspec's own path, such as
``$.events[0].content``), and so is one nested deeper than :data:`MAX_JSON_DEPTH`:
what the server does with a body (redacting it, storing it, reading it back) walks
it recursively, and a body nested near Python's recursion limit would fail there.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request

from agentjournal.infrastructure.server.errors import ApiError

T = TypeVar("T")

MAX_BODY_BYTES = 4 * 1024 * 1024
"""The largest request body the server reads, unless the server was set up otherwise."""

CLIENT_TIMEOUT = 30.0
"""Seconds a client has to send a request's headers, and then its body, unless the server
was set up otherwise."""

MAX_JSON_DEPTH = 64
"""The deepest nesting of objects and arrays a body may have. The API's bodies are
shallow; the deepest are custom tools' JSON schemas, which this leaves ample room."""


async def read_body(request: Request, limit: int, seconds: float = CLIENT_TIMEOUT) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body of {declared} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, f"request body is over the limit of {limit} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise ApiError(408, f"the request body did not arrive within {seconds:g} seconds") from None
    return b"".join(chunks)


async def read_json(request: Request, shape: type[T]) -> T:
    """The body as ``shape``; 400 ``invalid_request_error`` naming the field otherwise."""
    state = request.app.state
    data = await read_body(
        request,
        getattr(state, "max_body_bytes", MAX_BODY_BYTES),
        getattr(state, "client_timeout", CLIENT_TIMEOUT),
    )
    if not data.strip():
        data = b"{}"
    try:
        body = msgspec.json.decode(data, type=shape)
    except msgspec.ValidationError as e:
        raise ApiError(400, f"invalid request body: {e}") from None
    except msgspec.DecodeError as e:
        raise ApiError(400, f"request body is not valid JSON: {e}") from None
    except UnicodeDecodeError:
        raise ApiError(400, "request body is not valid JSON: it is not UTF-8") from None
    except RecursionError:  # nested far deeper than allowed
        raise _too_deep() from None
    if _depth(body) > MAX_JSON_DEPTH:
        raise _too_deep()
    return body


def _too_deep() -> ApiError:
    return ApiError(400, f"invalid request body: nested deeper than {MAX_JSON_DEPTH} levels")


def _depth(value: Any) -> int:
    """How deeply objects and arrays (and the Structs holding them) nest in ``value``,
    counted without recursion, so any depth is measured; only containers are visited."""
    deepest, level = 0, [value] if isinstance(value, _CONTAINERS) else []
    while level:
        deepest += 1
        below: list[Any] = []
        for item in level:
            if isinstance(item, msgspec.Struct):
                item = [getattr(item, name) for name in item.__struct_fields__]
            below += [child for child in (item.values() if isinstance(item, dict) else item)
                      if isinstance(child, _CONTAINERS)]  # fmt: skip
        level = below
    return deepest


_CONTAINERS = (dict, list, msgspec.Struct)


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"query parameter {name!r} must be an integer, not {text!r}") from None
    if not low <= value <= high:
        raise ApiError(400, f"query parameter {name!r} must be between {low} and {high}, not {value}")
    return value


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    text = request.query_params.get(name)
    if text is None:
        return default
    if text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0"):
        return False
    raise ApiError(400, f"query parameter {name!r} must be true or false, not {text!r}")


def query_time(request: Request, name: str) -> datetime | None:
    """A time; one given without an offset is taken as UTC (compared with the log's
    times, which all have one)."""
    text = request.query_params.get(name)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(400, f"query parameter {name!r} must be an RFC 3339 timestamp, not {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def to_json(value: Any) -> Any:
    """Plain JSON data from Structs, datetimes and UUIDs."""
    return msgspec.to_builtins(value)
