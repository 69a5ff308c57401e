"""The msgspec transcoder: every event and snapshot round-trips with its types intact."""

from __future__ import annotations

from datetime import timezone

from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Mapper
from hypothesis import given
from hypothesis import strategies as st

from agentjournal.domain import (
    AssistantMessage,
    ComputeBinding,
    PackageInstall,
    Session,
    SessionConfig,
    Status,
    StopReason,
    ToolCall,
    ToolResult,
    Usage,
)
from agentjournal.infrastructure.stores.transcoder import MsgspecTranscoder

CONFIG = SessionConfig(
    model="m", system="s", name="n", tools=("read_file",), packages={"pip": ("six",)},
    networking={"type": "none"}, env_names=("TOKEN",),
)  # fmt: skip


def a_full_session() -> Session:
    session = Session.start(CONFIG, title="t")
    session.begin_turn("hi", "w")
    session.attach_compute(ComputeBinding("docker", "abc", "img"))
    session.record_packages(PackageInstall("pip", ("six",), "abc", "ok"))
    call = ToolCall("c", "read_file", '{"path": "x"}')
    session.add_assistant_message(AssistantMessage("", (call,), "m"))
    session.record_usage("m", Usage(1, 2, 3, 4))
    session.start_tool_call(call)
    session.record_tool_result(ToolResult("c", "read_file", "\x00\ufffd", 0, 1.5, True, False))
    session.fail_turn("boom", "E")
    session.begin_turn("again", "w")
    session.complete_turn(StopReason.MAX_TURNS)
    session.set_title("renamed")
    session.release_compute("done")
    session.terminate("bye")
    return session


def test_every_event_round_trips_through_the_mapper():
    mapper = Mapper(transcoder=MsgspecTranscoder())
    session = a_full_session()
    events = session.collect_events()
    fork = Session.start(CONFIG).fork()
    events = [*events, *fork.collect_events()]
    for event in events:
        stored = mapper.to_stored_event(event)
        decoded = mapper.to_domain_event(stored)
        assert decoded == event, type(event).__name__  # dataclass equality: the class too
        # Equal is not identical (an aware timestamp equals itself in another zone): the
        # decoded event must encode to the very same bytes.
        assert mapper.to_stored_event(decoded).state == stored.state, type(event).__name__


def test_snapshots_round_trip_the_aggregate_state():
    mapper = Mapper(transcoder=MsgspecTranscoder())
    session = a_full_session()
    session.collect_events()
    snapshot = Snapshot.take(session)
    restored = mapper.to_domain_event(mapper.to_stored_event(snapshot)).mutate(None)
    assert restored.state() == session.state()
    assert restored.status is Status.TERMINATED


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(),
    st.floats(allow_nan=False), st.binary(),
)  # fmt: skip
values = st.recursive(
    st.one_of(
        scalars,
        st.uuids(),
        st.sampled_from(list(Status)),
        st.datetimes(timezones=st.just(timezone.utc)),
        st.builds(Usage, st.integers(0, 10**9), st.integers(0, 10**9)),
        st.builds(ToolCall, st.text(), st.text(), st.text()),
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.tuples(children, children),
        st.dictionaries(st.text(), children, max_size=4),
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), values, max_size=6))
def test_any_state_round_trips(state):
    transcoder = MsgspecTranscoder()
    assert transcoder.decode(transcoder.encode(state)) == state
