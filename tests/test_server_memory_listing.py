"""The session listing's ``memory_store_id`` filter, through the official SDK against a
real ``agentjournal serve`` on SQLite and on PostgreSQL: it finds the sessions whose
resources hold the store now (attached at creation, later, or re-added by a fork, and no
longer once the resource is removed), and combines with the other filters and with paging."""

from __future__ import annotations

import httpx
import pytest

from agentjournal.application.api import ManagedAgent
from tests.serving import API_KEY, running_server
from tests.test_server_resources import new_agent_session

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::agentjournal.application.api.RecordedConfigWarning"),
    pytest.mark.timeout(180),
    pytest.mark.parametrize(
        "store_env", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
    ),
]


def attached(store_id: str) -> dict[str, object]:
    return {"type": "memory_store", "memory_store_id": store_id, "access": "read_only"}


def listed(client, **query: object) -> list[str]:  # type: ignore[no-untyped-def]
    """Every session the listing gives for ``query``, all pages read."""
    return [s.id for s in client.beta.sessions.list(**query)]


def fork(url: str, session_id: str) -> str:
    answer = httpx.post(
        f"{url}/x-agentjournal/v1/sessions/{session_id}/fork", json={}, headers={"x-api-key": API_KEY}
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["id"])


def test_sessions_are_listed_by_the_memory_stores_they_hold(model_server, store_env):
    with running_server(model_server.base_url, store_env=store_env) as server:
        client = server.client()
        notes = client.beta.memory_stores.create(name="Notes")
        style = client.beta.memory_stores.create(name="Style")
        only_notes = new_agent_session(client, resources=[attached(notes.id)])
        both = new_agent_session(client, resources=[attached(notes.id), attached(style.id)])
        neither = new_agent_session(client)
        forked = fork(server.url, only_notes.id)

        # Attached later (the Python API, on the same store): the listing sees it too.
        later = ManagedAgent(config={"model": "gpt-4o-mini"}, store=store_env)
        later.resume_session(neither.id.removeprefix("sesn_"))
        later.attach_memory_store(style.id)
        later.service.close()

        assert listed(client, memory_store_id=notes.id) == [forked, both.id, only_notes.id]
        assert listed(client, memory_store_id=style.id) == [neither.id, both.id]
        assert listed(client, memory_store_id="memstore_" + "0" * 32) == []

        # Paged one at a time, oldest first, and with another filter.
        pages = client.beta.sessions.list(memory_store_id=notes.id, limit=1, order="asc")
        assert [s.id for s in pages] == [only_notes.id, both.id, forked]
        assert len(pages.data) == 1
        first = client.beta.sessions.list(memory_store_id=notes.id, limit=2)
        assert [s.id for s in first.data] == [forked, both.id] and first.has_next_page()
        assert listed(client, memory_store_id=notes.id, created_at_lte=both.created_at) == [
            both.id, only_notes.id,
        ]  # fmt: skip
        assert listed(client, memory_store_id=notes.id, agent_id=both.agent.id) == [both.id]
        assert listed(client, memory_store_id=notes.id, agent_id=neither.agent.id) == []
        client.beta.sessions.archive(forked)
        assert listed(client, memory_store_id=notes.id) == [both.id, only_notes.id]
        assert listed(client, memory_store_id=notes.id, include_archived=True)[0] == forked

        # A removed resource no longer counts; the other store of that session still does.
        [notes_resource, _] = both.resources
        client.beta.sessions.resources.delete(notes_resource.id, session_id=both.id)
        assert listed(client, memory_store_id=notes.id) == [only_notes.id]
        assert listed(client, memory_store_id=style.id) == [neither.id, both.id]


def test_the_memory_store_filter_pages_without_skipping_or_repeating_and_refuses_bad_ids(
    model_server, store_env
):
    with running_server(model_server.base_url, store_env=store_env) as server:
        client = server.client()
        notes = client.beta.memory_stores.create(name="Notes")
        made = [
            new_agent_session(client, resources=[attached(notes.id)] if n % 3 else []).id for n in range(9)
        ]
        holding = [s for n, s in enumerate(made) if n % 3]
        for order, expected in (("asc", holding), ("desc", holding[::-1])):
            for limit in (1, 2, 4):
                page = client.beta.sessions.list(memory_store_id=notes.id, limit=limit, order=order)
                seen = [s.id for s in page.data]
                while page.has_next_page():
                    page = page.get_next_page()
                    assert len(page.data) <= limit
                    seen += [s.id for s in page.data]
                assert seen == expected, (order, limit)
        assert listed(client, memory_store_id=notes.id, statuses=["idle"]) == holding[::-1]
        assert listed(client, memory_store_id=notes.id, statuses=["running"]) == []

        # Ids that are not a memory store's: the API's not-found error, never a 500.
        for wrong in ("memstore_nope", made[0], "memstore_" + "g" * 32, "%", "memstore_" + "0" * 31 + "_"):
            answer = httpx.get(
                f"{server.url}/v1/sessions", params={"memory_store_id": wrong}, headers={"x-api-key": API_KEY}
            )
            assert answer.status_code == 404, (wrong, answer.text)
            assert answer.json()["error"]["type"] == "not_found_error"
