"""The hash chain that makes every log in the store tamper-evident.

Every event records the hash of the event before it (``previous_hash``) and its
own ``hash``: SHA-256 over its type name, aggregate (session, agent, environment),
version, timestamp, the previous hash and its payload. The type name is the event class's qualified
name within the domain (``Session.UserMessageAdded``), not the module path its
code lives in, so moving code never makes an honest log fail verification. Changing, removing or reordering a stored event breaks
the chain at that event. A fork's first event chains from its parent's event at
the fork point.

The chain proves the log is as it was written, against anyone who does not
rewrite every later hash too; keep the head hash elsewhere (``agentjournal verify``
prints it) to catch even that.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

import msgspec
from eventsourcing.domain import Aggregate

GENESIS = ""
"""The ``previous_hash`` of an aggregate's first event when it has no parent."""

NOT_PAYLOAD = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", "previous_hash", "hash"}
)

_encoder = msgspec.msgpack.Encoder()

ADDED_FIELDS = "__added_fields__"
"""A payload Struct's class attribute naming the fields it gained after events with it
were first written (see :func:`hashable`)."""


def event_type_name(event_class: type) -> str:
    """The name an event's hash covers: stable however the code is packaged."""
    return event_class.__qualname__


def event_hash(
    event_type: str,
    session_id: UUID,
    version: int,
    timestamp: datetime,
    previous_hash: str,
    payload: Mapping[str, Any],
) -> str:
    """The hash of one event. The payload's fields are taken in name order, and
    tuples encode like lists, so a decoded event hashes as it did when new."""
    body = _encoder.encode(
        [
            event_type,
            str(session_id),
            version,
            timestamp.isoformat(),
            previous_hash,
            [[name, hashable(payload[name])] for name in sorted(payload)],
        ]
    )
    return hashlib.sha256(body).hexdigest()


def hashable(value: Any) -> Any:
    """A payload value as its hash covers it: as msgspec encodes it, except that a
    Struct's fields named in its ``__added_fields__`` are left out while they hold
    their defaults.

    So a payload type can gain a field with a default without changing the hash of
    any event written before it: decoding such an event fills in the default, which
    is then not hashed, exactly as it was not when the event was written."""
    if isinstance(value, msgspec.Struct):
        return _struct_body(value) if hasattr(value, ADDED_FIELDS) else value
    if isinstance(value, (list, tuple)):
        return [hashable(item) for item in value]
    if isinstance(value, dict):
        return {key: hashable(item) for key, item in value.items()}
    return value


def _struct_body(value: msgspec.Struct) -> dict[str, Any]:
    """The map msgspec writes for a Struct (its tag first), less the added fields that
    hold their defaults."""
    config = value.__struct_config__
    body: dict[str, Any] = {config.tag_field: config.tag} if config.tag_field else {}
    added = getattr(value, ADDED_FIELDS)
    for field in msgspec.structs.fields(value):
        item = getattr(value, field.name)
        if field.name in added and item == _default(field):
            continue
        body[field.encode_name] = hashable(item)
    return body


def _default(field: msgspec.structs.FieldInfo) -> Any:
    if field.default_factory is not msgspec.NODEFAULT:
        return field.default_factory()
    return field.default


def payload_of(event: Any) -> dict[str, Any]:
    """The fields of a stored event that its hash covers as payload."""
    return {k: v for k, v in vars(event).items() if k not in NOT_PAYLOAD}


S = TypeVar("S", bound=msgspec.Struct)


def as_recorded(value: S) -> S:
    """A payload Struct exactly as it will decode from the log, through the same
    MessagePack round trip the store's transcoder makes (an int given for a float field
    becomes a float, a tuple inside a plain dict a list). So the hash an aggregate
    computes when it triggers an event is the one a verifier recomputes, and comparing
    a new value with a recorded one compares like with like."""
    return msgspec.msgpack.decode(_encoder.encode(value), type=type(value))


def changed_fields(new: S, old: S) -> tuple[str, ...]:
    """The names of the fields where ``new`` differs from ``old``, in declaration order:
    what an update event records as its ``changes``."""
    return tuple(name for name in new.__struct_fields__ if getattr(new, name) != getattr(old, name))


A = TypeVar("A", bound="ChainedAggregate")


class ChainedAggregate(Aggregate):
    """An aggregate whose events are linked by the hash chain.

    A subclass nests its own ``Event`` (subclassing ``ChainedAggregate.Event``) and
    ``Created`` classes, as ``Session`` does, so its topics and hashed type names are
    its own; it creates instances with :meth:`_create_chained` and triggers events as
    usual. The aggregate computes each link itself (it picks the timestamp, and for a
    new aggregate the id, before hashing), so the chain is part of the domain, not of
    a storage layer, and :mod:`agentjournal.application.audit` verifies every
    aggregate's log the same way.
    """

    chain_head = GENESIS
    """The hash of the last event applied: the next event's ``previous_hash``."""

    class Event(Aggregate.Event):
        previous_hash: str
        hash: str

        def mutate(self, aggregate: Any) -> Any:
            aggregate = super().mutate(aggregate)
            aggregate.chain_head = self.hash
            return aggregate

    class Created(Event, Aggregate.Created):
        pass

    @classmethod
    def _create_chained(
        cls: type[A],
        event_class: type[Any],
        previous_hash: str,
        aggregate_id: UUID | None = None,
        **payload: Any,
    ) -> A:
        """A new aggregate from its first event, chained from ``previous_hash``
        (:data:`GENESIS`, or a parent's event for a fork). Its id is a new random one
        unless ``aggregate_id`` names it (an aggregate found by what it belongs to)."""
        aggregate_id, timestamp = aggregate_id or uuid4(), event_class.create_timestamp()
        digest = event_hash(event_type_name(event_class), aggregate_id, 1, timestamp, previous_hash, payload)
        return cls._create(
            event_class, id=aggregate_id, timestamp=timestamp,
            previous_hash=previous_hash, hash=digest, **payload,
        )  # fmt: skip

    def trigger_event(self, event_class: type[Any], **payload: Any) -> None:
        timestamp: datetime = event_class.create_timestamp()
        digest = event_hash(
            event_type_name(event_class), self.id, self.version + 1, timestamp, self.chain_head, payload
        )
        super().trigger_event(
            event_class, timestamp=timestamp, previous_hash=self.chain_head, hash=digest, **payload
        )
