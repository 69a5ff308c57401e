"""Request bodies: bounded, JSON, and checked against a msgspec Struct.

A body over the limit is refused (413) while it is still arriving, so a client
cannot make the server hold more than the limit in memory, and one that takes
longer than the client timeout to arrive is refused too (408), so a client cannot
hold a connection open by sending it slowly. A body that is not
what the endpoint takes is a 400 naming the field (msgspec's own path, such as
``$.events[0].content``), and so is one nested deeper than :data:`MAX_JSON_DEPTH`:
what the server does with a body (redacting it, storing it, reading it back) walks
it recursively, and a body nested near Python's recursion limit would fail there.
So is an integer the log cannot hold (see :data:`SMALLEST_INT`). JSON itself has no
NaN or infinity, and a number too large for a float is refused as it is decoded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
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

SMALLEST_INT = -(2**63)
LARGEST_INT = 2**64 - 1
"""The integers a body may hold: those the log's encoding (MessagePack) can record. A
larger one would be accepted and then fail where its event is hashed or stored."""


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
    _check_values(body)
    return body


def _too_deep() -> ApiError:
    return ApiError(400, f"invalid request body: nested deeper than {MAX_JSON_DEPTH} levels")


_Path = tuple[Any, ...]
"""Where a value is in a body: ``()`` for the body, else ``(the container's path, key or index)``."""


def _check_values(body: Any) -> None:
    """Refuse a body nested deeper than :data:`MAX_JSON_DEPTH`, or holding an integer
    outside :data:`SMALLEST_INT` to :data:`LARGEST_INT`, naming where. Walked a level of
    objects and arrays (and the Structs holding them) at a time, without recursion, so any
    depth is measured; a path is spelled out only for the value refused."""
    level, paths = ([body], [()]) if isinstance(body, _CONTAINERS) else ([], [])
    depth = 0
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            raise _too_deep()
        below: list[Any] = []
        below_paths: list[_Path] = []
        for container, path in zip(level, paths, strict=True):
            for key, child in _members(container):
                if isinstance(child, _CONTAINERS):
                    below.append(child)
                    below_paths.append((path, key))
                elif type(child) is int and not SMALLEST_INT <= child <= LARGEST_INT:
                    raise ApiError(
                        400,
                        f"invalid request body: {_spelled((path, key))} is an integer outside "
                        f"{SMALLEST_INT} to {LARGEST_INT}, the integers the log can record",
                    )
        level, paths = below, below_paths


_CONTAINERS = (dict, list, msgspec.Struct)


def _members(container: Any) -> Iterable[tuple[str | int, Any]]:
    """(key, value) of an object's members, an array's items, or a Struct's fields (by
    the names the body gave them)."""
    if isinstance(container, dict):
        return container.items()
    if isinstance(container, list):
        return enumerate(container)
    values = (getattr(container, name) for name in container.__struct_fields__)
    return zip(container.__struct_encode_fields__, values)


def _spelled(path: _Path) -> str:
    """A path as msgspec writes one (``$.tools[0].input_schema``), a key that is no
    plain name quoted (``$.metadata["a b"]``)."""
    keys: list[str | int] = []
    while path:
        path, key = path
        keys.append(key)
    text = "$"
    for key in reversed(keys):
        if isinstance(key, int):
            text += f"[{key}]"
        elif key.isidentifier():
            text += f".{key}"
        else:
            text += f"[{msgspec.json.encode(key).decode()}]"
    return text


def to_json(value: Any) -> Any:
    """Plain JSON data from Structs, datetimes and UUIDs."""
    return msgspec.to_builtins(value)
