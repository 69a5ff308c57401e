"""Query parameters: read strictly, each within the range its use allows.

Every number and time a route reads from its query string goes through these
helpers, so whatever a client writes there is either a value the route can use
all the way down to the store, or a 400 in the API's shape naming the parameter
and what it takes. A number is ASCII digits with an optional minus (Python's
``int`` would also read ``١٢``, ``1_0`` and `` 12 ``); a version is at most
:data:`MAX_VERSION`; a time must be one UTC can express, since the stores compare
times in UTC.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from starlette.requests import Request

from agentjournal.infrastructure.server.errors import ApiError

MAX_VERSION = 2**63 - 1
"""The largest version a log (a session's, an agent's) can reach: both stores keep
versions as signed 64-bit integers, and a larger one given to them fails there."""

_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,20}")
"""Up to 20 digits: more than any range here needs, few enough to convert at once."""

_SHOWN = 40
"""The characters of a refused value an error repeats."""


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    """The whole number ``name`` gives, from ``low`` to ``high``; ``default`` when it is absent."""
    text = request.query_params.get(name)
    if text is None:
        return default
    if not (_WHOLE_NUMBER.fullmatch(text) and low <= int(text) <= high):
        raise ApiError(
            400, f"query parameter {name!r} must be a whole number from {low} to {high}, not {_shown(text)}"
        )
    return int(text)


def query_version(request: Request, name: str = "version") -> int | None:
    """The version ``name`` gives (1 to :data:`MAX_VERSION`); None when it is absent."""
    return query_int(request, name, 0, 1, MAX_VERSION) or None


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    text = request.query_params.get(name)
    if text is None:
        return default
    if text.lower() in ("true", "1"):
        return True
    if text.lower() in ("false", "0"):
        return False
    raise ApiError(400, f"query parameter {name!r} must be true or false, not {_shown(text)}")


def query_time(request: Request, name: str) -> datetime | None:
    """A time, in UTC; one given without an offset is taken as UTC (compared with the log's
    times, which all have one). A time UTC cannot express (the first hours of year 1 east
    of Greenwich, the last of 9999 west of it) is refused."""
    text = request.query_params.get(name)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
        return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError):
        raise ApiError(
            400, f"query parameter {name!r} must be an RFC 3339 timestamp UTC can express, not {_shown(text)}"
        ) from None


def _shown(text: str) -> str:
    """A refused value as an error repeats it: quoted, and cut short when long."""
    return repr(text) if len(text) <= _SHOWN else f"{text[:_SHOWN]!r}... ({len(text):,} characters)"
