"""A mapper that stores each event's state typed by its class, so it decodes without callbacks.

eventsourcing's :class:`~eventsourcing.persistence.Mapper` hands its transcoder an
event's state as an untyped dict, so :class:`~agentjournal.infrastructure.stores.transcoder.MsgspecTranscoder`
must name the type of every value MessagePack would lose (a Struct, an enum, a UUID, a
tuple) in an extension type, and decoding calls back into Python for each one. But the
mapper knows the event's class, and the class's type hints are its schema: this mapper
writes the state as plain MessagePack and decodes it with a msgspec decoder built once per
class from those hints (a ``TypedDict``, so the decoder returns the very dict the event is
made from). msgspec then restores every type itself: Structs (the ``Message`` union is
tagged), enums, UUIDs (16 bytes), tuples, aware datetimes.

A typed record is the byte ``0xC1``, the class version (one byte), then the MessagePack
map. MessagePack never uses ``0xC1``, so no record of the transcoder (a MessagePack map)
begins with it: the two formats are told apart by their first byte, never by guessing,
and records written before this mapper existed decode as they always did. An event is
written typed only if its class's schema gives back exactly what was encoded (same values,
same types, same keys), which the mapper checks as it writes; otherwise (a key the class
does not declare, a list where it declares a tuple, a class whose hints leave values
untyped, such as eventsourcing's ``Snapshot``) the transcoder writes it as before. So a
value is never silently dropped or retyped. The cipher and compressor apply to both
formats exactly as in eventsourcing's mapper.

Upcasting works as eventsourcing's does: a record written under an older class version
(the transcoder's ``class_version`` key, or the typed record's version byte) is brought up
to date by the class's ``upcast_vN_vN+1`` methods. A typed record's older schema is not
known to today's class, so its state reaches the upcasters as MessagePack's plain values
(lists, strings, maps) and is typed by today's schema after the last one.
"""

from __future__ import annotations

import functools
import itertools
import typing
from collections.abc import Iterable
from typing import Any, TypedDict, TypeVar, cast
from uuid import UUID

import msgspec
from eventsourcing.domain import DomainEvent, DomainEventProtocol
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent, find_id_convertor
from eventsourcing.utils import get_topic, resolve_topic

Row = tuple[int, str, bytes]
"""A stored event as a log's ranged read returns it: its version, topic and state."""

TYPED = 0xC1
"""The first byte of a typed record: a byte MessagePack never uses."""

_NOT_STATE = frozenset({"originator_id", "originator_version"})
"""Fields the stored event's columns hold, not its state."""

_BARE = frozenset({dict, list, tuple, set, frozenset})
_CONTAINERS = frozenset({dict, list, tuple})


class TypedMapper(Mapper[UUID]):
    """Writes each event's state typed by its class (see the module); reads both formats.

    Set it with eventsourcing's ``MAPPER_TOPIC``; its transcoder (``TRANSCODER_TOPIC``)
    writes what the class's schema cannot hold exactly and reads older records.
    """

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        schema = _schema(type(domain_event))
        if schema is None:
            return super().to_stored_event(domain_event)
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        stored = schema.write(state)
        if stored is None:
            return self._readable(super().to_stored_event(domain_event))
        if self.compressor:
            stored = self.compressor.compress(stored)
        if self.cipher:
            stored = self.cipher.encrypt(stored)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(schema.cls),
            state=stored,
        )

    def _readable(self, stored_event: StoredEvent) -> StoredEvent:
        """``stored_event``, once it is known to read back: the old format holds values
        its declared types would refuse at the top of an event, but a Struct inside it is
        decoded by its own types (a ``True`` where a Struct declares an ``int`` is written,
        then refused at every read). A log must never hold an event it cannot read, so such
        an event is refused here, before it is saved. Only events the typed format cannot
        hold come this way (and snapshots), so the turn's usual events pay nothing."""
        try:
            self.to_domain_event(stored_event)
        except (TypeError, ValueError, msgspec.MsgspecError) as e:
            raise ValueError(f"{stored_event.topic} would be stored unreadable: {e}") from e
        return stored_event

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        cls = resolve_topic(stored_event.topic)
        state = self._state(cls, stored_event.topic, stored_event.originator_id,
                            stored_event.originator_version, stored_event.state)  # fmt: skip
        id_convertor = find_id_convertor(cls, cast(Any, type(stored_event.originator_id)))
        state["originator_id"] = id_convertor(stored_event.originator_id)
        state["originator_version"] = stored_event.originator_version
        return _event(cls, state)

    def from_row(
        self, originator_id: UUID, version: int, topic: str, record: bytes
    ) -> DomainEventProtocol[UUID]:
        """The event of a stored row of ``originator_id``'s log (its version, topic and
        state), decoded as :meth:`to_domain_event` decodes a stored event, with no stored
        event or id made for it: the caller's ``originator_id`` is the event's."""
        cls = resolve_topic(topic)
        state = self._state(cls, topic, originator_id, version, record)
        state["originator_id"] = originator_id
        state["originator_version"] = version
        return _event(cls, state)

    def from_rows(self, originator_id: UUID, rows: Iterable[Row]) -> list[DomainEventProtocol[UUID]]:
        """The events of stored rows of ``originator_id``'s log, each exactly as
        :meth:`from_row` decodes it, in a loop that does once per read what is the same for
        every row of a topic (its class, its schema's decoder and header).

        A row typed under its class's current version goes straight through the cipher, the
        compressor and the decoder into its event: a page of a long log is a thousand rows
        of a few topics, and the calls :meth:`from_row` makes per row (the topic's class,
        the schema, the checks) were most of a row's decoding. Every other row (an older
        class version, the transcoder's format) and any row the fast path fails on is
        decoded again by :meth:`from_row`, which upcasts it or raises naming the row: a row
        is never skipped or served half-decoded."""
        typed: dict[str, tuple[type, bytes, msgspec.msgpack.Decoder[dict[str, Any]]] | None] = {}
        cipher, compressor = self.cipher, self.compressor
        new_event, set_state = object.__new__, object.__setattr__
        events: list[DomainEventProtocol[UUID]] = []
        append = events.append
        for version, topic, stored in rows:
            if topic in typed:
                known = typed[topic]
            else:
                schema = _schema(resolve_topic(topic))
                known = typed[topic] = (schema.cls, schema.header, schema.decoder) if schema else None
            try:
                if known is None:
                    raise LookupError(topic)  # not typed: from_row's path
                cls, header, decoder = known
                record = cipher.decrypt(stored) if cipher else stored
                if compressor:
                    record = compressor.decompress(record)
                if not record.startswith(header):
                    raise LookupError(topic)  # another version or format: from_row's path
                state = decoder.decode(memoryview(record)[2:])
            except Exception:
                append(self.from_row(originator_id, version, topic, stored))
                continue
            state["originator_id"] = originator_id
            state["originator_version"] = version
            event: Any = new_event(cls)
            set_state(event, "__dict__", state)
            append(event)
        return events

    def _state(
        self, cls: type, topic: str, originator_id: object, version: int, record: bytes
    ) -> dict[str, Any]:
        """The state of a stored record, through the cipher, the compressor and the typed
        schema or the transcoder (upcast); any refusal is eventsourcing's
        :class:`MapperDeserialisationError`, naming the record."""
        try:
            if self.cipher:
                record = self.cipher.decrypt(record)
            if self.compressor:
                record = self.compressor.decompress(record)
            if record[0] == TYPED:
                schema = _schema(cls)
                if schema is None:
                    msg = f"{cls.__qualname__} has no typed schema to read its typed record with"
                    raise TypeError(msg)
                return schema.read(record)
            state: dict[str, Any] = self.transcoder.decode(record)
            _upcast(cls, state, state.pop("class_version", 1))
            return state
        except Exception as e:
            msg = (
                f"Failed to deserialise state of stored event with topic '{topic}', "
                f"originator_id '{originator_id}' and originator_version {version}: {e}"
            )
            raise MapperDeserialisationError(msg) from e


def _event(cls: type, state: dict[str, Any]) -> Any:
    """An event of ``cls`` holding ``state`` as its attributes (no ``__init__`` run)."""
    domain_event: Any = object.__new__(cls)
    object.__setattr__(domain_event, "__dict__", state)
    return domain_event


class _Schema:
    """One event class's state as msgspec types it: every declared field optional (an
    event written before a field existed lacks it, and must decode without it)."""

    encoder = msgspec.msgpack.Encoder(uuid_format="bytes")

    def __init__(self, cls: type, state_type: Any) -> None:
        self.cls = cls
        self.class_version: int = getattr(cls, "class_version", 1)
        self.header = bytes([TYPED, self.class_version])
        self.decoder: msgspec.msgpack.Decoder[dict[str, Any]] = msgspec.msgpack.Decoder(state_type)

    def write(self, state: dict[str, Any]) -> bytes | None:
        """The typed record of ``state``, or None when decoding it would not give back
        exactly ``state``."""
        try:
            body = self.encoder.encode(state)
            decoded = self.decoder.decode(body)
        except (TypeError, ValueError, msgspec.MsgspecError):
            return None
        if decoded != state or not _same_types(decoded, state):
            return None
        return self.header + body

    def read(self, record: bytes) -> dict[str, Any]:
        """The state of a typed record: decoded by this schema, or, when it was written
        under an older class version, as MessagePack's plain values, upcast, then typed.
        A newer class version's record is refused: this schema would drop what it added."""
        body = memoryview(record)[2:]
        if record[1] == self.class_version:
            return self.decoder.decode(body)
        if record[1] > self.class_version:
            msg = f"written by {self.cls.__qualname__} version {record[1]}, newer than this one's"
            raise ValueError(msg)
        state: dict[str, Any] = msgspec.msgpack.decode(body)
        _upcast(self.cls, state, record[1])
        return self.decoder.decode(self.encoder.encode(state))


def prepare_schemas(aggregate: type) -> None:
    """Build now the schema of each event class ``aggregate`` declares, which would
    otherwise be built at the first write or read of an event of that class (its type
    hints resolved, a msgspec encoder and decoder made: about 0.7 ms a class here). A
    server does so before it takes its first turn (``ready_for_a_first_turn``)."""
    for value in vars(aggregate).values():
        if isinstance(value, type) and issubclass(value, DomainEvent):
            _schema(value)


@functools.cache
def _schema(cls: type) -> _Schema | None:
    """The schema of an event class's state, from its type hints; None when a hint leaves
    values untyped (``Any``, a bare ``dict``), msgspec cannot decode it, or the class
    version does not fit the record's one byte."""
    if getattr(cls, "class_version", 1) > 255:
        return None
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):
        return None
    fields = {
        name: hint
        for name, hint in hints.items()
        if name not in _NOT_STATE and typing.get_origin(hint) is not typing.ClassVar
    }
    if any(_untyped(hint) for hint in fields.values()):
        return None
    state_type = TypedDict(f"{cls.__qualname__}.State", fields, total=False)  # type: ignore[misc]
    try:
        return _Schema(cls, state_type)
    except TypeError:
        return None


def _untyped(hint: Any) -> bool:
    """Whether MessagePack's plain values could stand for ``hint``'s without telling which
    type they had. Inside a Struct they cannot: msgspec decodes a Struct against its own
    fields, in either format, so a Struct is typed whatever its fields say."""
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        return False
    if hint is Any or hint is object or isinstance(hint, TypeVar):
        return True
    args = typing.get_args(hint)
    if not args:
        return hint in _BARE or typing.get_origin(hint) is not None
    return any(_untyped(arg) for arg in args if arg is not Ellipsis)


def _same_types(decoded: Any, original: Any) -> bool:
    """Whether two equal values have the same types, all the way down to the Structs.

    Equality leaves only the types to check (an enum equals its value, an int its float),
    and it ends at a Struct: equal Structs are of one class, and a Struct decodes its own
    fields alike in either format. The types are compared a collection at a time."""
    items, originals = _flat(decoded), _flat(original)
    types = list(map(type, originals))
    if types != list(map(type, items)):
        return False
    if _CONTAINERS.isdisjoint(types):
        return True
    return all(_same_types(d, o) for d, o in zip(items, originals, strict=True) if type(o) in _CONTAINERS)


def _flat(value: Any) -> list[Any]:
    """A collection's items; a dict's keys and values, in turn."""
    return list(itertools.chain.from_iterable(value.items())) if type(value) is dict else list(value)


def _upcast(cls: type, state: dict[str, Any], version: int) -> None:
    """Bring ``state``, written under class ``version``, up to ``cls``'s version, as
    eventsourcing's mapper does."""
    while version < getattr(cls, "class_version", 1):
        getattr(cls, f"upcast_v{version}_v{version + 1}")(state)
        version += 1
