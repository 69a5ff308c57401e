"""A msgspec transcoder for eventsourcing's mapper: MessagePack bytes, typed payloads.

eventsourcing hands a transcoder the state of an event (or a snapshot) as a dict
and expects the same dict back, without saying which event it was. The values
that MessagePack cannot tell apart on the way back (a Struct from a plain map, a
UUID or an enum member from a string, a tuple from a list) are wrapped in
MessagePack extension types that name their Python type; msgspec decodes a
Struct's body against its own class, so everything inside it keeps its type too.
Datetimes use MessagePack's own timestamp type.
"""

from __future__ import annotations

import enum
import functools
import uuid
from datetime import datetime
from typing import Any

import msgspec
from eventsourcing.persistence import Transcoder
from eventsourcing.utils import get_topic, resolve_topic

_STRUCT = 1
_UUID = 2
_ENUM = 3
_TUPLE = 4
_SEPARATOR = b"\x00"
# Types that come back from MessagePack as they went in (datetimes as timestamps).
_NATIVE = frozenset({str, int, float, bool, type(None), bytes, datetime})


class MsgspecTranscoder(Transcoder):
    """Encodes event state to MessagePack with msgspec; the default of agentjournal."""

    def __init__(self) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(ext_hook=self._ext_hook)

    def encode(self, obj: Any) -> bytes:
        return self._encoder.encode(self._wrap(obj))

    def decode(self, data: bytes) -> Any:
        return self._decoder.decode(data)

    def _wrap(self, value: Any) -> Any:
        """Tag the values whose type MessagePack would lose."""
        if type(value) in _NATIVE:
            return value
        if isinstance(value, msgspec.Struct):
            body = self._encoder.encode(value)
            return msgspec.msgpack.Ext(_STRUCT, _topic(type(value)) + _SEPARATOR + body)
        if isinstance(value, dict):
            return {key: self._wrap(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._wrap(item) for item in value]
        if isinstance(value, enum.Enum):
            body = self._encoder.encode(value.value)
            return msgspec.msgpack.Ext(_ENUM, _topic(type(value)) + _SEPARATOR + body)
        if isinstance(value, uuid.UUID):
            return msgspec.msgpack.Ext(_UUID, value.bytes)
        if isinstance(value, tuple):
            return msgspec.msgpack.Ext(_TUPLE, self._encoder.encode(self._wrap(list(value))))
        return value

    def _ext_hook(self, code: int, data: memoryview) -> Any:
        if code == _UUID:
            return uuid.UUID(bytes=bytes(data))
        if code == _TUPLE:
            return tuple(self._decoder.decode(data))
        topic, _, body = bytes(data).partition(_SEPARATOR)
        cls = _resolve(topic)
        if code == _STRUCT:
            return _struct_decoder(cls).decode(body)
        if code == _ENUM:
            return cls(self._decoder.decode(body))
        msg = f"unknown MessagePack extension type {code} in stored event"
        raise ValueError(msg)


@functools.cache
def _topic(cls: type) -> bytes:
    return get_topic(cls).encode()


@functools.cache
def _resolve(topic: bytes) -> Any:
    return resolve_topic(topic.decode())


@functools.cache
def _struct_decoder(cls: type[msgspec.Struct]) -> msgspec.msgpack.Decoder[Any]:
    return msgspec.msgpack.Decoder(cls)
