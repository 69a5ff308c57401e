"""Turns that wait for the client: custom tools and tool confirmations, answered through
the API (from any process, even after a restart), and interrupts."""

from __future__ import annotations

import anthropic
import pytest

from agentjournal.domain import CustomTool
from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.serving import running_server
from tests.test_server_sessions import new_session

WEATHER = CustomTool(
    name="get_weather",
    description="The weather in a city.",
    input_schema={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def until_idle(client, session_id: str, **options: object) -> list:  # type: ignore[no-untyped-def]
    """The events of a stream, from where it starts, up to the next idle."""
    seen = []
    with client.beta.sessions.events.stream(session_id, **options) as stream:
        for event in stream:
            seen.append(event)
            if event.type == "session.status_idle":
                return seen
    raise AssertionError("the stream ended before the session went idle")


def send(client, session_id: str, *events: dict) -> list:  # type: ignore[no-untyped-def]
    return client.beta.sessions.events.send(session_id, events=list(events)).data


def prompt(text: str) -> dict:
    return {"type": "user.message", "content": [{"type": "text", "text": text}]}


def test_a_custom_tool_pauses_the_turn_until_the_client_answers(api_server, store, model_server):
    client = api_server.client()
    session_id = new_session(store, custom_tools=(WEATHER,))
    model_server.enqueue(
        Reply(text="Let me check.", tool_calls=[ScriptedToolCall("get_weather", {"city": "Paris"})]),
        Reply(text="It is sunny in Paris."),
    )
    send(client, session_id, prompt("Weather in Paris?"))
    paused = until_idle(client, session_id)
    use = next(e for e in paused if e.type == "agent.custom_tool_use")
    assert (use.name, use.input) == ("get_weather", {"city": "Paris"})
    assert paused[-1].stop_reason.type == "requires_action"
    assert paused[-1].stop_reason.event_ids == [use.id]
    assert client.beta.sessions.retrieve(session_id).status == "idle"

    with client.beta.sessions.events.stream(session_id) as stream:
        echo = send(client, session_id, {"type": "user.custom_tool_result", "custom_tool_use_id": use.id,
                                         "content": [{"type": "text", "text": "sunny, 24 C"}]})  # fmt: skip
        rest = []
        for event in stream:
            rest.append(event)
            if event.type == "session.status_idle":
                break
    assert echo[0].type == "user.custom_tool_result"
    assert [e.type for e in rest] == [
        "user.custom_tool_result",
        "session.status_running",
        "agent.message",
        "span.model_request_end",
        "session.status_idle",
    ]
    assert rest[-1].stop_reason.type == "end_turn"
    assert rest[2].content[0].text == "It is sunny in Paris."
    # The model got the client's answer as the tool's result.
    assert model_server.requests[-1]["messages"][-1] == {
        "role": "tool", "tool_call_id": model_server.requests[-1]["messages"][-2]["tool_calls"][0]["id"],
        "content": "sunny, 24 C",
    }  # fmt: skip


def test_a_paused_turn_survives_a_server_restart_and_continues_from_another_process(model_server, store):
    session_id = new_session(store, custom_tools=(WEATHER,))
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("get_weather", {"city": "Oslo"})]), Reply(text="Snow in Oslo.")
    )
    with running_server(model_server.base_url, store) as first:
        client = first.client()
        send(client, session_id, prompt("Weather in Oslo?"))
        use = next(e for e in until_idle(client, session_id) if e.type == "agent.custom_tool_use")
        first.kill()
    with running_server(model_server.base_url, store) as second:
        client = second.client()
        with client.beta.sessions.events.stream(session_id) as stream:
            send(client, session_id, {"type": "user.custom_tool_result", "custom_tool_use_id": use.id,
                                      "content": [{"type": "text", "text": "snow"}]})  # fmt: skip
            texts = []
            for event in stream:
                if event.type == "agent.message":
                    texts.append(event.content[0].text)
                if event.type == "session.status_idle":
                    break
    assert texts == ["Snow in Oslo."]


def test_confirmations_allow_one_call_and_deny_another(api_server, store, model_server, tmp_path):
    client = api_server.client()
    session_id = new_session(store, tools=("execute_command",), confirm_tools=("execute_command",))
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("execute_command", {"command": "echo allowed-ran"}),
                          ScriptedToolCall("execute_command", {"command": "echo denied-ran"})]),
        Reply(text="Done."),
    )  # fmt: skip
    send(client, session_id, prompt("Run both."))
    paused = until_idle(client, session_id)
    uses = [e for e in paused if e.type == "agent.tool_use"]
    assert [u.input["command"] for u in uses] == ["echo allowed-ran", "echo denied-ran"]
    assert paused[-1].stop_reason.event_ids == [u.id for u in uses]

    send(client, session_id, {"type": "user.tool_confirmation", "tool_use_id": uses[0].id, "result": "allow"})
    # One answer of two: the turn still waits.
    assert client.beta.sessions.retrieve(session_id).status == "idle"
    with client.beta.sessions.events.stream(session_id) as stream:
        send(client, session_id, {"type": "user.tool_confirmation", "tool_use_id": uses[1].id, "result": "deny",
                                  "deny_message": "not that one"})  # fmt: skip
        rest = []
        for event in stream:
            rest.append(event)
            if event.type == "session.status_idle":
                break
    results = {e.tool_use_id: e for e in rest + paused if e.type == "agent.tool_result"}
    assert "allowed-ran" in results[uses[0].id].content[0].text
    assert not results[uses[0].id].is_error
    denied = results[uses[1].id]
    assert denied.is_error and "not that one" in denied.content[0].text
    assert rest[-1].stop_reason.type == "end_turn"
    confirmations = client.beta.sessions.events.list(session_id, types=["user.tool_confirmation"]).data
    assert [(c.tool_use_id, c.result) for c in confirmations] == [(uses[0].id, "allow"), (uses[1].id, "deny")]
    # The denied command never ran: the model saw only the allowed one's output.
    tool_messages = [m for m in model_server.requests[-1]["messages"] if m["role"] == "tool"]
    assert not any("denied-ran\n" == m["content"] for m in tool_messages)


def test_answers_nobody_asked_for_are_refused(api_server, store):
    client = api_server.client()
    session_id = new_session(store, custom_tools=(WEATHER,))
    with pytest.raises(anthropic.BadRequestError, match="custom_tool_use_id"):
        send(client, session_id, {"type": "user.custom_tool_result", "custom_tool_use_id": "sevt_nope"})
    other = new_session(store)
    with pytest.raises(anthropic.BadRequestError):
        send(client, session_id, {"type": "user.tool_confirmation", "tool_use_id": "sevt_" + other[5:] + "0" * 12,
                                  "result": "allow"})  # fmt: skip


def test_an_interrupt_stops_the_running_turn_and_the_session_stays_usable(api_server, store, model_server):
    client = api_server.client()
    session_id = new_session(store)
    model_server.enqueue(Reply(text="a long story " * 200, hold=True))
    with client.beta.sessions.events.stream(session_id) as stream:
        send(client, session_id, prompt("Tell me a long story."))
        model_server.wait_for_requests(1)  # the turn is mid-reply until released
        send(client, session_id, {"type": "user.interrupt"})
        model_server.release()  # the interrupted turn reads the rest of its reply, and stops
        seen = []
        for event in stream:
            seen.append(event)
            if event.type == "session.status_idle":
                break
    assert [e.type for e in seen][-2:] == ["user.interrupt", "session.status_idle"]
    assert client.beta.sessions.retrieve(session_id).status == "idle"
    model_server.enqueue(Reply(text="Short one."))
    send(client, session_id, prompt("Then a short one."))
    after = until_idle(client, session_id, extra_headers={"Last-Event-ID": seen[-1].id})
    assert [e.content[0].text for e in after if e.type == "agent.message"] == ["Short one."], [
        (e.type, getattr(e, "error", None)) for e in after
    ]


def test_an_answer_given_as_soon_as_the_call_is_seen_continues_the_turn_without_a_pause(
    api_server, store, model_server
):
    client = api_server.client()
    session_id = new_session(store, custom_tools=(WEATHER,))
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("get_weather", {"city": "Rome"})]), Reply(text="Warm in Rome.")
    )
    seen = []
    with client.beta.sessions.events.stream(session_id) as stream:
        send(client, session_id, prompt("Weather in Rome?"))
        for event in stream:
            seen.append(event)
            if event.type == "agent.custom_tool_use":
                send(client, session_id, {"type": "user.custom_tool_result", "custom_tool_use_id": event.id,
                                          "content": [{"type": "text", "text": "warm"}]})  # fmt: skip
            if event.type == "session.status_idle":
                break
    idles = [e for e in seen if e.type == "session.status_idle"]
    assert [i.stop_reason.type for i in idles] == ["end_turn"]
    assert [e.type for e in seen].count("session.status_running") == 1
    assert [e.content[0].text for e in seen if e.type == "agent.message"] == ["Warm in Rome."]


def test_a_prompt_while_the_next_turn_runs_is_refused_after_an_interrupted_turn_returns(
    api_server, store, model_server
):
    """An interrupted turn whose model call returns late must not end the turn after it."""
    client = api_server.client()
    session_id = new_session(store)
    model_server.enqueue(Reply(text="late " * 20, hold=True), Reply(text="second " * 100, delay=0.05))
    send(client, session_id, prompt("One."))
    model_server.wait_for_requests(1)  # the first turn's reply is held until the second turn runs
    send(client, session_id, {"type": "user.interrupt"})
    send(client, session_id, prompt("Two."))
    model_server.wait_for_requests(2)
    model_server.release()
    # Until the second turn ends (the first one's model call returns long before), every
    # further prompt is refused as busy.
    refused = 0
    model_server.enqueue(Reply(text="third"))
    while True:
        try:
            send(client, session_id, prompt("Three."))
            break  # accepted: only once the second turn had ended, as the log must show
        except anthropic.ConflictError:
            refused += 1
    until_idle(client, session_id)
    types = [e.type for e in client.beta.sessions.events.list(session_id)]
    prompts = [n for n, kind in enumerate(types) if kind == "user.message"]
    assert refused > 0 and len(prompts) == 3
    # The second turn ended by itself, its reply recorded, before a third was accepted.
    between = types[prompts[1] : prompts[2]]
    assert "agent.message" in between and between[-1] == "session.status_idle", types


def test_a_title_set_while_a_turn_runs_leaves_the_turn_to_finish(api_server, store, model_server):
    client = api_server.client()
    session_id = new_session(store)
    model_server.enqueue(Reply(text="an answer " * 40, hold=True))
    with client.beta.sessions.events.stream(session_id) as stream:
        send(client, session_id, prompt("Take your time."))
        model_server.wait_for_requests(1)  # the turn is mid-reply until released
        client.beta.sessions.update(session_id, title="Renamed meanwhile")
        client.beta.sessions.update(session_id, metadata={"team": "blue"})
        model_server.release()
        seen = []
        for event in stream:
            seen.append(event)
            if event.type == "session.status_idle":
                break
    assert seen[-1].stop_reason.type == "end_turn"
    assert "".join(e.content[0].text for e in seen if e.type == "agent.message") == "an answer " * 40
    session = client.beta.sessions.retrieve(session_id)
    assert (session.status, session.title, session.metadata) == (
        "idle",
        "Renamed meanwhile",
        {"team": "blue"},
    )
