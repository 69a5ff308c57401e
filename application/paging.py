"""Pages of a listing, and the opaque cursors that lead from one page to the next.

A listing is read one page at a time, newest first (or oldest first), and a page
ends with a cursor naming where the next one starts: the sort key of its last
item, not an offset, so items created meanwhile neither repeat nor shift a page.
Cursors are opaque to clients (base64 of the key as JSON); one this engine did not
give is refused as bad input, naming the field.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

import msgspec

from agentjournal.application.errors import ConfigError

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


class Page(msgspec.Struct, Generic[T], frozen=True):
    """Some items of a listing; ``next_page`` is the cursor of the rest, None at the end."""

    items: list[T]
    next_page: str | None = None


def encode_cursor(*key: Any) -> str:
    """An opaque cursor for a sort key (strings, numbers, timestamps, UUIDs)."""
    return base64.urlsafe_b64encode(msgspec.json.encode(key)).decode().rstrip("=")


def decode_cursor(cursor: str, key: type[T], field: str = "page") -> T:
    """The sort key a cursor from :func:`encode_cursor` holds, as type ``key``
    (a tuple type, such as ``tuple[datetime, UUID]``). Listings sort by UTC times and
    their cursors hold them so; a time with another offset (which UTC may not even
    express) is no cursor of theirs."""
    refused = ConfigError(f"{field}: {cursor!r} is not a cursor from this listing")
    try:
        data = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        decoded = msgspec.json.decode(data, type=key)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise refused from None
    times = [part for part in decoded if isinstance(part, datetime)] if isinstance(decoded, tuple) else []
    if any(moment.utcoffset() for moment in times):
        raise refused
    return decoded


def check_limit(limit: int, field: str = "limit") -> int:
    """A page size within what a listing serves (1 to 100)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ConfigError(f"{field}: {limit!r} is not a whole number from 1 to {MAX_LIMIT}")
    return limit


def paged(rows: Sequence[T], limit: int, key: Callable[[T], tuple[Any, ...]]) -> Page[T]:
    """A page from up to ``limit + 1`` rows read in order: the first ``limit``, and a
    cursor after the last of them when there was one more."""
    items = list(rows[:limit])
    more = len(rows) > limit
    return Page(items, encode_cursor(*key(items[-1])) if more else None)
