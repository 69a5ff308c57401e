"""``initial_events`` at session creation, through the official SDK against a real server:
the prompts are the session's first events, in order, and one turn answering them starts
without a separate send; what this server cannot do yet is refused before anything is
recorded."""

from __future__ import annotations

import anthropic
import pytest

from agentjournal.infrastructure.models.scripted import Reply
from tests.conftest import wait_until
from tests.test_server_resources import new_agent_session

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.timeout(120)]


def message(text: str) -> dict[str, object]:
    return {"type": "user.message", "content": [{"type": "text", "text": text}]}


def test_the_first_prompt_is_the_first_event_and_its_turn_starts_at_once(api_server, model_server):
    client = api_server.client()
    model_server.enqueue(Reply(text="Hello from the first turn."))
    session = new_agent_session(client, initial_events=[message("Say hello.")])
    wait_until(lambda: client.beta.sessions.retrieve(session.id).status == "idle"
               and any(e.type == "session.status_idle" for e in client.beta.sessions.events.list(session.id)),
               "the first turn to end")  # fmt: skip
    events = list(client.beta.sessions.events.list(session.id))
    assert events[0].type == "user.message" and events[0].content[0].text == "Say hello."
    assert [e.content[0].text for e in events if e.type == "agent.message"] == ["Hello from the first turn."]
    assert client.beta.sessions.retrieve(session.id).stats.active_seconds > 0


def test_several_prompts_are_the_first_events_in_order_and_one_turn_answers_them(api_server, model_server):
    client = api_server.client()
    model_server.enqueue(Reply(text="All three read."))
    texts = [f"Note {n}: remember the number {n * 7}." for n in range(3)]
    session = new_agent_session(client, initial_events=[message(t) for t in texts])
    wait_until(lambda: any(e.type == "session.status_idle" for e in client.beta.sessions.events.list(session.id)),
               "the first turn to end")  # fmt: skip
    events = list(client.beta.sessions.events.list(session.id))
    assert [e.content[0].text for e in events[:3] if e.type == "user.message"] == texts
    assert [e.content[0].text for e in events if e.type == "agent.message"] == ["All three read."]
    assert [e.type for e in events].count("session.status_running") == 1
    seen = model_server.requests[-1]["messages"]
    assert [m["content"] for m in seen if m["role"] == "user"][-3:] == texts


@pytest.mark.parametrize(
    ("events", "wanted"),
    [
        ([{"type": "user.define_outcome", "description": "done"}], "until outcomes exist"),
        ([message("x")] * 51, "at most 50"),
        ([{"type": "user.interrupt"}], "must be 'user.message'"),
        ([{"type": "user.message", "content": [{"type": "text", "text": "  "}]}], "no text"),
    ],
)
def test_initial_events_this_server_cannot_take_are_refused(api_server, events, wanted):
    client = api_server.client()
    with pytest.raises(anthropic.BadRequestError) as refused:
        new_agent_session(client, initial_events=events)
    assert wanted in refused.value.message
    assert client.beta.sessions.list().data == []
