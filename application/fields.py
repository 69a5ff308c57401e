"""Request fields every catalog part checks the same way: a value converted strictly to its
type (a mismatch names the field, as ``tools[0]``), and ``metadata``, which the cloud API
patches (a key set to null is removed) and bounds (16 keys of 1 to 64 characters, values up
to 512). Agents, environments, vaults, credentials and memory stores all take theirs here;
the module imports no aggregate, so a store's part loads none it does not use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from agentjournal.application.errors import ConfigError, InvalidMetadata

MAX_METADATA = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512


def converted(value: Any, kind: Any, where: str = "") -> Any:
    """``value`` as ``kind`` (strictly: no string for a number); a mismatch is a ConfigError
    naming the field, as msgspec's path names it (``$.tools[0]`` becomes ``tools[0]``)."""
    try:
        return msgspec.convert(value, kind, strict=True)
    except msgspec.ValidationError as e:
        message, _, path = str(e).partition(" - at `$")
        field = (where + path.rstrip("`")).lstrip(".") or "body"
        raise ConfigError(f"{field}: {message[0].lower()}{message[1:]}") from None


def check_metadata(metadata: Mapping[str, str]) -> None:
    if len(metadata) > MAX_METADATA:
        raise InvalidMetadata(f"metadata: at most {MAX_METADATA} keys, not {len(metadata)}")
    for key, value in metadata.items():
        if not 1 <= len(key) <= MAX_METADATA_KEY:
            raise InvalidMetadata(f"metadata: key {key[:80]!r} must be 1 to {MAX_METADATA_KEY} characters")
        if len(value) > MAX_METADATA_VALUE:
            raise InvalidMetadata(f"metadata[{key!r}]: values are at most {MAX_METADATA_VALUE} characters")


def patched(current: Mapping[str, str], patch: Any, deletes: tuple[Any, ...]) -> dict[str, str]:
    """Metadata with a patch applied: a key set to one of ``deletes`` is removed, others set."""
    if patch is None:
        return dict(current)
    changes = converted(patch, dict[str, str | None], "metadata")
    kept = {k: v for k, v in current.items() if k not in changes}
    return kept | {k: v for k, v in changes.items() if v not in deletes and v is not None}


def patched_metadata(current: Mapping[str, str], patch: Any) -> dict[str, str]:
    """``current`` after the cloud API's metadata patch (a key set to null is removed),
    checked as an agent's is: vaults, credentials and memory stores take theirs this way."""
    metadata = patched(current, patch, deletes=(None,))
    check_metadata(metadata)
    return metadata
