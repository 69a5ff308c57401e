"""The typed mapper: every event class round-trips exactly in the typed format, anything
its schema cannot hold falls back to the transcoder's format, and stores that mix both
formats (or hold only the old one) load and verify."""

from __future__ import annotations

import dataclasses
import enum
import importlib
import pkgutil
import types
import typing
import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any, ClassVar

import msgspec
import pytest
from eventsourcing.cipher import AESCipher
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.domain import Aggregate, Snapshot
from eventsourcing.persistence import Mapper, MapperDeserialisationError
from eventsourcing.utils import Environment, get_topic

import agentjournal.domain
from agentjournal.application import SessionService, audit
from agentjournal.domain import (
    AssistantMessage,
    Session,
    SessionConfig,
    StopReason,
    ToolCall,
    ToolResult,
    Usage,
)
from agentjournal.infrastructure.stores.mapper import TYPED, TypedMapper
from agentjournal.infrastructure.stores.transcoder import MsgspecTranscoder

CONFIG = SessionConfig(model="m", system="s", name="n", tools=("read_file",))
UNIONS = (typing.Union, types.UnionType)
NOW = datetime(2026, 1, 2, 3, 4, 5, 678_000, tzinfo=timezone.utc)


def event_classes() -> Iterator[type]:
    """Every event class of the project's aggregates, found by walking the subclasses of
    eventsourcing's ``Aggregate.Event``: a new event class is covered without a line here.
    Every domain module is imported first, so the walk does not depend on what other tests
    (or the application's lazy imports) happened to load."""
    for module in pkgutil.iter_modules(agentjournal.domain.__path__, "agentjournal.domain."):
        importlib.import_module(module.name)
    seen: set[type] = set()
    stack: list[type] = [Aggregate.Event]
    while stack:
        for subclass in stack.pop().__subclasses__():
            if subclass not in seen:
                seen.add(subclass)
                stack.append(subclass)
    return iter(sorted((c for c in seen if c.__module__.startswith("agentjournal.")), key=get_topic))


def sample(hint: Any) -> Any:
    """A value of type ``hint`` that exercises its types: every field of a Struct, every
    member of a list's union (the messages), a tuple of two items."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object:
        return {"any": [1, "two"]}
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        hints = typing.get_type_hints(hint)
        return hint(**{f: sample(hints[f]) for f in hint.__struct_fields__})
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return list(hint)[-1]
    if origin in UNIONS:
        members = [arg for arg in args if arg is not type(None)]
        return sample(members[0])
    if origin is list:
        (item,) = args
        return [
            sample(member)
            for member in (typing.get_args(item) if typing.get_origin(item) in UNIONS else [item])
        ]
    if origin is tuple:
        return (sample(args[0]), sample(args[0])) if args[-1] is Ellipsis else tuple(map(sample, args))
    if origin in (dict, Mapping):
        return {sample(args[0]): sample(args[1])}
    if origin is typing.Literal:
        return args[0]
    simple = {str: "text \x00\ufffd", int: 7, float: 1.5, bool: True, datetime: NOW, uuid.UUID: uuid.uuid4()}
    return simple[hint]


def sample_event(cls: type) -> Any:
    hints = typing.get_type_hints(cls)
    state = {
        name: sample(hint)
        for name, hint in hints.items()
        if name not in ("originator_id", "originator_version") and typing.get_origin(hint) is not ClassVar
    }
    event = object.__new__(cls)
    event.__dict__.update(originator_id=uuid.uuid4(), originator_version=3, **state)
    return event


def strictly_equal(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (a tuple is no list, an enum no str)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strictly_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(strictly_equal, a, b))
    if isinstance(a, msgspec.Struct):
        return all(strictly_equal(getattr(a, f), getattr(b, f)) for f in a.__struct_fields__)
    if isinstance(a, datetime):
        return a == b and a.tzinfo is not None and b.utcoffset() == a.utcoffset()
    return bool(a == b)


def mappers() -> list[TypedMapper]:
    cipher_env = Environment(env={"CIPHER_KEY": AESCipher.create_key(32)})
    return [
        TypedMapper(MsgspecTranscoder()),
        TypedMapper(MsgspecTranscoder(), compressor=ZlibCompressor(), cipher=AESCipher(cipher_env)),
    ]


def test_the_walk_finds_the_events_of_every_aggregate() -> None:
    names = {cls.__qualname__ for cls in event_classes()}
    assert {"Session.SessionForked", "Agent.AgentUpdated", "Environment.EnvironmentDeleted"} <= names


@pytest.mark.parametrize("cls", list(event_classes()), ids=lambda c: c.__qualname__)
def test_every_event_class_round_trips_exactly_in_the_typed_format(cls: type) -> None:
    event = sample_event(cls)
    for mapper in mappers():
        stored = mapper.to_stored_event(event)
        record = stored.state
        if mapper.cipher and mapper.compressor:
            record = mapper.compressor.decompress(mapper.cipher.decrypt(record))
        assert record[0] == TYPED, "a domain event should be typed, not fall back"
        decoded = mapper.to_domain_event(stored)
        assert type(decoded) is cls
        assert strictly_equal(vars(decoded), vars(event))


def test_a_typed_record_is_at_most_its_two_header_bytes_longer_and_old_records_still_read() -> None:
    session = Session.start(CONFIG)
    session.begin_turn("hi", "w")
    call = ToolCall("c", "read_file", "{}")
    session.add_assistant_message(AssistantMessage("", (call,), "m"))
    session.start_tool_call(call)
    session.record_tool_result(ToolResult("c", "read_file", "out", 0, 1.5))
    session.record_usage("m", Usage(1, 2))
    session.complete_turn()
    typed, old = TypedMapper(MsgspecTranscoder()), Mapper(transcoder=MsgspecTranscoder())
    for event in session.collect_events():
        new_record, old_record = typed.to_stored_event(event), old.to_stored_event(event)
        assert len(new_record.state) <= len(old_record.state) + 2, type(event).__name__
        for record in (new_record, old_record):
            assert strictly_equal(vars(typed.to_domain_event(record)), vars(event))


def test_a_key_the_class_does_not_declare_falls_back_to_the_old_format() -> None:
    event = sample_event(Session.TitleSet)
    event.__dict__["extra"] = (1, uuid.uuid4())
    mapper = TypedMapper(MsgspecTranscoder())
    stored = mapper.to_stored_event(event)
    assert stored.state[0] != TYPED
    assert strictly_equal(vars(mapper.to_domain_event(stored)), vars(event))


@pytest.mark.parametrize(
    ("cls", "name", "value"),
    [
        (Session.ConfigChanged, "changes", ["model"]),  # declared a tuple: typed, it would come back as one
        (Session.TurnCompleted, "stop_reason", "end_turn"),  # declared an enum, which equals its value
        (Session.UsageRecorded, "model", StopReason.END_TURN),  # declared a str: the enum would be lost
        (Session.TurnStarted, "turn", 2.0),  # declared an int
        (Session.TitleSet, "hash", 12),  # declared a str
    ],
)
def test_a_value_its_declared_type_would_change_falls_back_to_the_old_format(
    cls: type, name: str, value: Any
) -> None:
    event = sample_event(cls)
    event.__dict__[name] = value
    mapper = TypedMapper(MsgspecTranscoder())
    stored = mapper.to_stored_event(event)
    assert stored.state[0] != TYPED
    assert strictly_equal(vars(mapper.to_domain_event(stored)), vars(event))


def test_an_event_that_would_not_read_back_is_refused_before_it_is_stored() -> None:
    # A bool where a message's Struct declares an int: the old format writes it, and the
    # Struct's own decoder would refuse it at every read of the log.
    event = sample_event(Session.ToolResultRecorded)
    event.__dict__["result"] = ToolResult(tool_call_id="c", name="bash", output="x", exit_code=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="would be stored unreadable"):
        TypedMapper(MsgspecTranscoder()).to_stored_event(event)


def test_snapshots_fall_back_and_round_trip_the_aggregate_state() -> None:
    session = Session.start(CONFIG)
    session.begin_turn("hi", "w")
    snapshot = Snapshot.take(session)
    mapper = TypedMapper(MsgspecTranscoder())
    stored = mapper.to_stored_event(snapshot)
    assert stored.state[0] != TYPED  # its state is a dict[str, Any]
    decoded = mapper.to_domain_event(stored)
    assert strictly_equal(vars(decoded), vars(snapshot))
    assert decoded.mutate(None).state() == session.state()


class Thing(Aggregate):
    class Tagged(Aggregate.Event):
        names: tuple[str, ...]


class ThingV2(Aggregate):
    class Tagged(Aggregate.Event):
        class_version = 2
        tags: tuple[str, ...]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["tags"] = state.pop("names")


def test_a_typed_record_of_an_older_class_version_is_upcast_then_typed() -> None:
    mapper = TypedMapper(MsgspecTranscoder())
    event = Thing.Tagged(originator_id=uuid.uuid4(), originator_version=2, timestamp=NOW, names=("a", "b"))
    old = mapper.to_stored_event(event)
    assert old.state[:2] == bytes([TYPED, 1])
    # The record as a later release reads it, whose class is ThingV2.Tagged.
    upcast = mapper.to_domain_event(dataclasses.replace(old, topic=get_topic(ThingV2.Tagged)))
    assert type(upcast) is ThingV2.Tagged
    expected = {
        "timestamp": NOW,
        "tags": ("a", "b"),
        "originator_id": event.originator_id,
        "originator_version": 2,
    }
    assert strictly_equal(vars(upcast), expected)
    new = mapper.to_stored_event(upcast)
    assert new.state[:2] == bytes([TYPED, 2])
    assert strictly_equal(vars(mapper.to_domain_event(new)), expected)
    # And a release that knows only version 1 refuses the newer record rather than drop its fields.
    with pytest.raises(MapperDeserialisationError, match="newer"):
        mapper.to_domain_event(dataclasses.replace(new, topic=old.topic))


def test_a_session_stored_in_both_formats_loads_and_verifies(store_env: dict[str, str]) -> None:
    """A session written before the typed mapper (eventsourcing's mapper and the
    transcoder), continued after it: one log of both formats."""
    env = {**store_env, "IS_SNAPSHOTTING_ENABLED": "n"}
    before = SessionService({**env, "MAPPER_TOPIC": "eventsourcing.persistence:Mapper"})
    session = Session.start(CONFIG)
    session.begin_turn("first", "w")
    session.add_assistant_message(AssistantMessage("one"))
    session.complete_turn()
    before.save(session)
    before.close()
    old = session.version

    after = SessionService(env)
    loaded = after.get_session(session.id)
    loaded.begin_turn("second", "w")
    call = ToolCall("c", "read_file", "{}")
    loaded.add_assistant_message(AssistantMessage("", (call,)))
    loaded.start_tool_call(call)
    loaded.record_tool_result(ToolResult("c", "read_file", "out"))
    loaded.complete_turn()
    after.save(loaded)

    formats = [record.state[0] == TYPED for record in after.recorder.select_events(session.id)]
    assert formats == [False] * old + [True] * (loaded.version - old)
    assert after.get_session(session.id).state() == loaded.state()
    assert audit.verify(after, session.id).ok
    after.close()
