"""Memory stores attacked as a hostile client would, through the official SDK (and raw HTTP
where the SDK refuses to send it) against a real ``agentjournal serve``: a redacted
secret is read back nowhere a client reaches, two redactions at once agree, and ids,
bodies and methods the API does not expect are errors of its shape, never a 500."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any
from uuid import UUID

import anthropic
import httpx
import pytest

from agentjournal.application.audit import export_session, verify
from agentjournal.application.store import open_store
from tests.serving import API_KEY
from tests.test_server_resources import new_agent_session

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.timeout(180)]

SECRET = "token-5c1e-never-shown-again"
HEADERS = {"x-api-key": API_KEY}


def redacted_store(client: Any) -> tuple[Any, Any, Any, Any]:
    """A store whose memory held ``SECRET`` at ``/keys.md`` in a version since redacted; it
    holds another text at another path now. Returns the store, the memory, the redacted and the current version."""
    stores = client.beta.memory_stores
    memstore = stores.create(name="Ops")
    memory = stores.memories.create(memstore.id, path="/keys.md", content=SECRET)
    stores.memories.update(memory.id, memory_store_id=memstore.id, path="/vault.md", content="in the vault")
    current, leaked = stores.memory_versions.list(memstore.id, memory_id=memory.id)
    return memstore, memory, stores.memory_versions.redact(leaked.id, memory_store_id=memstore.id), current


def test_a_redacted_secret_is_in_no_answer_to_a_client(api_server, store: Path):
    client = api_server.client()
    memstore, memory, redacted, current = redacted_store(client)
    versions = client.beta.memory_stores.memory_versions
    answers: list[str] = []
    for view in ("basic", "full"):
        for query in ({}, {"memory_id": memory.id}, {"operation": "created"}):
            answers += [v.to_json() for v in versions.list(memstore.id, view=view, **query)]  # type: ignore[arg-type]
        answers.append(versions.retrieve(redacted.id, memory_store_id=memstore.id, view=view).to_json())
        answers.append(
            client.beta.memory_stores.memories.retrieve(
                memory.id, memory_store_id=memstore.id, view=view
            ).to_json()
        )
        answers += [m.to_json() for m in client.beta.memory_stores.memories.list(memstore.id, view=view)]
    # The log's own routes take a session's id: a store's, dressed as a session's, is not found.
    as_session = "sesn_" + memstore.id.removeprefix("memstore_")
    for route in ("log", "export", "verify", "state", "files"):
        answer = httpx.get(
            f"{api_server.url}/x-agentjournal/v1/sessions/{as_session}/{route}", headers=HEADERS
        )
        assert answer.status_code == 404, (route, answer.text)
        answers.append(answer.text)
    found = httpx.get(f"{api_server.url}/x-agentjournal/v1/search", params={"q": SECRET}, headers=HEADERS)
    assert found.status_code == 200, found.text
    answers.append(found.text)

    assert not [a for a in answers if SECRET in a or "/keys.md" in a]
    # What `agentjournal export` and `verify` write of the store (its log keeps the path).
    service = open_store(store)
    store_id = UUID(memstore.id.removeprefix("memstore_"))
    exported = b"".join(export_session(service, store_id))
    assert verify(service, store_id).broken is None and SECRET.encode() not in exported
    service.close()
    assert any("in the vault" in a for a in answers)  # the current version is still shown
    assert current.id in "".join(answers)


def test_two_redactions_at_once_agree_and_erase_the_content(api_server, store: Path):
    client = api_server.client()
    stores = client.beta.memory_stores
    memstore = stores.create(name="Ops")
    memory = stores.memories.create(memstore.id, path="/keys.md", content=SECRET)
    stores.memories.update(memory.id, memory_store_id=memstore.id, content="in the vault")
    _, leaked = stores.memory_versions.list(memstore.id, memory_id=memory.id)
    start = threading.Barrier(4)
    answers: list[Any] = []

    def redact() -> None:
        start.wait(timeout=30)
        answers.append(api_server.client().beta.memory_stores.memory_versions.redact(
            leaked.id, memory_store_id=memstore.id
        ))  # fmt: skip

    threads = [threading.Thread(target=redact) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 4 and all(a == answers[0] for a in answers)
    assert answers[0].redacted_at is not None and answers[0].content_sha256 is None
    kinds = [v.operation for v in stores.memory_versions.list(memstore.id)]
    assert kinds == ["modified", "created"]  # one redaction recorded, no new version
    data = b"".join(p.read_bytes() for p in (store, Path(f"{store}-wal")) if p.exists())
    assert SECRET.encode() not in data


def test_a_deleted_store_is_not_found_to_a_redaction_and_its_contents_are_gone(api_server, store: Path):
    client = api_server.client()
    memstore, _, _, current = redacted_store(client)
    client.beta.memory_stores.delete(memstore.id)
    with pytest.raises(anthropic.NotFoundError):
        client.beta.memory_stores.memory_versions.redact(current.id, memory_store_id=memstore.id)
    with pytest.raises(anthropic.NotFoundError):
        client.beta.memory_stores.memory_versions.retrieve(current.id, memory_store_id=memstore.id)
    data = b"".join(p.read_bytes() for p in (store, Path(f"{store}-wal")) if p.exists())
    assert b"in the vault" not in data


def test_a_version_of_another_store_is_not_found_in_this_one(api_server):
    client = api_server.client()
    stores = client.beta.memory_stores
    mine, theirs = stores.create(name="Mine"), stores.create(name="Theirs")
    memory = stores.memories.create(theirs.id, path="/a.md", content=SECRET)
    stores.memories.update(memory.id, memory_store_id=theirs.id, content="b")
    _, old = stores.memory_versions.list(theirs.id)
    for ask in (stores.memory_versions.redact, stores.memory_versions.retrieve):
        with pytest.raises(anthropic.NotFoundError):
            ask(old.id, memory_store_id=mine.id)
    with pytest.raises(anthropic.NotFoundError):
        stores.memories.retrieve(memory.id, memory_store_id=mine.id)
    assert stores.memory_versions.retrieve(old.id, memory_store_id=theirs.id).redacted_at is None


def error_of(answer: httpx.Response, status: int) -> str:
    """The error's type, once the answer is the API's error shape with this status."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["type"] == "error" and body["error"]["message"], body
    return str(body["error"]["type"])


def test_ids_bodies_and_methods_the_api_does_not_expect_are_its_errors(api_server):
    client = api_server.client()
    stores = client.beta.memory_stores
    memstore = stores.create(name="Ops")
    memory = stores.memories.create(memstore.id, path="/a.md", content="x")
    base = f"{api_server.url}/v1/memory_stores/{memstore.id}"
    bad_versions = ["memver_", "memver_%2E%2E", "x" * 5000, "memver_" + "0" * 32, "%00", "memver_%FF"]
    for version in bad_versions:
        for method, tail in (("POST", "/redact"), ("GET", "")):
            answer = httpx.request(method, f"{base}/memory_versions/{version}{tail}", headers=HEADERS)
            assert error_of(answer, 404) == "not_found_error", (version, method)
    for store_id in ("memstore_", "sesn_" + "0" * 32, "memstore_" + "z" * 32, "%00"):
        answer = httpx.post(
            f"{api_server.url}/v1/memory_stores/{store_id}/memory_versions/memver_{'0' * 32}/redact",
            headers=HEADERS,
        )
        assert error_of(answer, 404) == "not_found_error", store_id
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        answer = httpx.request(method, f"{base}/memory_versions/memver_{'0' * 32}/redact", headers=HEADERS)
        assert error_of(answer, 405) == "invalid_request_error", method
    assert error_of(httpx.delete(f"{base}/memory_versions", headers=HEADERS), 405)

    # Bodies: too large, not JSON, of the wrong shape.
    huge = {"path": "/big.md", "content": "x" * 200_000}
    assert error_of(httpx.post(f"{base}/memories", json=huge, headers=HEADERS), 400)
    assert error_of(httpx.post(f"{base}/memories", content=b"x" * 30_000_000, headers=HEADERS), 413)
    assert error_of(httpx.post(f"{base}/memories", content=b"{nope", headers=HEADERS), 400)
    for body in ([], {"path": 7}, {"path": "/b.md", "content": 7}, {"path": "/c.md", "content": ["x"]}):
        assert error_of(httpx.post(f"{base}/memories", json=body, headers=HEADERS), 400), body
    for body in (
        {"content": 7},
        {"path": 7},
        {"precondition": "x"},
        {"precondition": {"type": "content_sha256"}},
    ):
        answer = httpx.post(f"{base}/memories/{memory.id}", json=body, headers=HEADERS)
        assert error_of(answer, 400), body
    redact = f"{base}/memory_versions/memver_{'0' * 32}/redact"
    assert error_of(httpx.post(redact, content=b"y" * 30_000_000, headers=HEADERS), 404)

    # Queries: a cursor, a limit, a view, a session or a depth that is not one.
    common = ({"page": "garbage"}, {"page": "eyJ4Ijp9"}, {"limit": "abc"}, {"limit": "0"}, {"view": "all"})
    for route, own in (
        ("memory_versions", ({"operation": "redacted"}, {"session_id": "sesn_nope"})),
        ("memories", ({"depth": "-1"}, {"path_prefix": "no-slash"})),
    ):
        for query in (*common, *own):
            answer = httpx.get(f"{base}/{route}", params=query, headers=HEADERS)
            assert answer.status_code in (400, 404), (route, query, answer.text)
            error_of(answer, answer.status_code)


def test_a_redacted_content_of_the_largest_size_leaves_the_files_too(api_server, store: Path):
    """A content of 100 KiB spans SQLite's overflow pages, which the erasure must zero too."""
    stores = api_server.client().beta.memory_stores
    memstore = stores.create(name="Ops")
    marker = SECRET + "|"
    large = (marker * (102_400 // len(marker)))[:102_400]
    memory = stores.memories.create(memstore.id, path="/big.md", content=large)
    stores.memories.update(memory.id, memory_store_id=memstore.id, content="small now")
    _, leaked = stores.memory_versions.list(memstore.id)
    stores.memory_versions.redact(leaked.id, memory_store_id=memstore.id)
    data = b"".join(p.read_bytes() for p in (store, Path(f"{store}-wal")) if p.exists())
    assert SECRET.encode() not in data


def test_a_store_and_a_session_are_not_found_under_each_others_ids(api_server):
    client = api_server.client()
    memstore = client.beta.memory_stores.create(name="Ops")
    session = new_agent_session(client)
    session_as_store = "memstore_" + session.id.removeprefix("sesn_")
    store_as_session = "sesn_" + memstore.id.removeprefix("memstore_")
    for path in ("", "/memories", "/memory_versions", f"/memory_versions/memver_{'0' * 32}"):
        answer = httpx.get(f"{api_server.url}/v1/memory_stores/{session_as_store}{path}", headers=HEADERS)
        assert error_of(answer, 404) == "not_found_error", path
    redact = f"/v1/memory_stores/{session_as_store}/memory_versions/memver_{'0' * 32}/redact"
    assert error_of(httpx.post(api_server.url + redact, headers=HEADERS), 404)
    assert error_of(
        httpx.delete(f"{api_server.url}/v1/memory_stores/{session_as_store}", headers=HEADERS), 404
    )
    for path in ("", "/events"):
        answer = httpx.get(f"{api_server.url}/v1/sessions/{store_as_session}{path}", headers=HEADERS)
        assert error_of(answer, 404) == "not_found_error", path
    sent = {"events": [{"type": "user.message", "content": [{"type": "text", "text": "hi"}]}]}
    answer = httpx.post(f"{api_server.url}/v1/sessions/{store_as_session}/events", json=sent, headers=HEADERS)
    assert error_of(answer, 404)
    assert client.beta.memory_stores.retrieve(memstore.id).name == "Ops"
