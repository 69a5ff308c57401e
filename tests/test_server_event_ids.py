"""API event ids: each names its log version and its place among that version's API
events, so a client can page, resume and answer by id. A log event can project more than
256 API events (a fork's first event projects one per inherited message): their ids keep
working as cursors and still sort as their events do, and ids below 256 keep their form."""

from __future__ import annotations

from uuid import UUID, uuid4

import httpx
import pytest

from agentjournal.domain import AssistantMessage, Session
from agentjournal.infrastructure.server.errors import ApiError
from agentjournal.infrastructure.server.wire import event_id, event_position
from tests.serving import API_KEY
from tests.test_browser_routes import create, opened

HEADERS = {"x-api-key": API_KEY}


def test_ids_below_256_keep_their_form_and_every_id_reads_back_in_position_order():
    session = uuid4()
    assert event_id(session, 7, 0) == f"sevt_{session.hex}000000000700"
    assert event_id(session, 7, 255) == f"sevt_{session.hex}0000000007ff"
    positions = [(version, index) for version in (1, 2, 0xABCDE)
                 for index in (*range(300), 4095, 4096, 65535, 65536, 2**40)]  # fmt: skip
    ids = [event_id(session, *position) for position in positions]
    assert [event_position(session, given, "page") for given in ids] == positions
    assert sorted(ids) == ids and len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    "body",
    [
        "0000000007ff03100",  # the long form with a leading zero: 256 has one id
        "0000000007ff4100",  # digits that do not match their count
        "0000000007ff2ff",  # the long form for an index the short form writes
        "0000000007fe3100",  # the long form begins with ff
        "0000000007FF",  # ids are lower case
        "00000000_7ff",  # what int() would read, but no id has
        "0000000007f",
    ],
)
def test_text_that_is_no_id_of_the_session_is_refused(body: str):
    session = uuid4()
    with pytest.raises(ApiError, match="is not the id of an event of session") as refused:
        event_position(session, f"sevt_{session.hex}{body}", "page")
    assert refused.value.status == 400
    with pytest.raises(ApiError):  # a valid id, of another session
        event_position(uuid4(), event_id(session, 7, 256), "page")


def conversation(store, turns: int) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
    """A session of ``turns`` short turns, written with the domain's own commands; its
    id and the texts of its messages in order."""
    session_id = create(store, "long")
    texts = []
    with opened(store) as service:
        session: Session = service.get_session(UUID(session_id[5:]))
        for n in range(turns):
            session.begin_turn(f"question {n}", "test")
            session.add_assistant_message(AssistantMessage(f"answer {n}"))
            session.complete_turn()
            texts += [f"question {n}", f"answer {n}"]
            if n % 100 == 99:
                service.save(session)
        service.save(session)
    return session_id, texts


def test_a_fork_of_1000_messages_pages_both_ways_and_resumes_past_its_256th_event(api_server, store):
    parent, texts = conversation(store, 500)
    forked = httpx.post(f"{api_server.url}/x-agentjournal/v1/sessions/{parent}/fork", headers=HEADERS)
    assert forked.status_code == 200, forked.text
    fork = forked.json()["id"]
    client = api_server.client(timeout=60)

    # Pages of 128: the cursors are the ids of events 127 (short), 255 (its last) and 383 (long) ...
    page = client.beta.sessions.events.list(fork, limit=128)
    listed, cursors = list(page.data), []
    while page.has_next_page():
        cursors.append(page.next_page)
        page = page.get_next_page()
        listed += page.data
    ids = [event.id for event in listed]
    assert [event.content[0].text for event in listed] == texts
    assert [event.type for event in listed[:2]] == ["user.message", "agent.message"]
    assert cursors == ids[127::128]
    assert ids[:256] == [f"sevt_{fork[5:]}{1:010x}{index:02x}" for index in range(256)]
    assert len(set(ids)) == len(ids) == 1000 and sorted(ids) == ids
    backwards = client.beta.sessions.events.list(fork, limit=128, order="desc")
    assert [event.id for event in backwards] == ids[::-1]

    # Nothing more happens to the fork once it is terminated, so a stream of it ends.
    closed = httpx.post(f"{api_server.url}/x-agentjournal/v1/sessions/{fork}/terminate", headers=HEADERS)
    assert closed.status_code == 200, closed.text
    for last_seen in (255, 300):
        resume = {"Last-Event-ID": ids[last_seen]}
        with client.beta.sessions.events.stream(fork, extra_headers=resume) as stream:
            resumed = list(stream)
        assert [event.id for event in resumed[:-1]] == ids[last_seen + 1 :]
        assert resumed[-1].type == "session.status_terminated"
