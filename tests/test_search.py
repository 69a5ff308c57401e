"""Search inside sessions (the index the session browser reads), on SQLite and PostgreSQL:
words found in messages, tool calls, tool output and failures, each hit at its event;
filters by tool, failure, model and status, for hits and for sessions; an encrypted store
keeps no words; a file's history and its diff against its previous change."""

from __future__ import annotations

import hashlib
from uuid import UUID

import httpx
import msgspec
import pytest

from agentjournal.application import SessionService
from agentjournal.application.errors import FileNotRecorded
from agentjournal.application.file_history import file_diff
from agentjournal.application.search import Filters, UnsearchableQuery, snippet, words
from agentjournal.domain import AssistantMessage, FileState, SessionConfig, Status, ToolCall, ToolResult

pytestmark = pytest.mark.timeout(120)

CONFIG = SessionConfig(
    model="gpt-4o-mini", system="Be brief.", name="t", tools=(), networking={"type": "unrestricted"}
)


def session_with(service: SessionService, title: str, prompt: str, tool: str, output: str, *,
                 failed: bool = False, config: SessionConfig = CONFIG) -> UUID:  # fmt: skip
    """A session of one turn: the prompt, a reply calling ``tool``, its output, an answer."""
    session_id = service.create_session(config, title=title)
    session = service.get_session(session_id)
    session.begin_turn(prompt, "test")
    call = ToolCall("c1", tool, '{"path": "src/settings.py"}')
    session.add_assistant_message(AssistantMessage("Let me look at the settings.", (call,)))
    session.start_tool_call(call)
    session.record_tool_result(ToolResult(call.id, tool, output, 1 if failed else 0, 2.0, is_error=failed))
    session.add_assistant_message(AssistantMessage("Done."))
    session.complete_turn()
    service.save(session)
    return session_id


def test_words_are_found_where_they_were_recorded(service):
    first = session_with(
        service,
        "first",
        "Please tidy the configuration loader",
        "read_file",
        "PORT = 8080\nHOST = 'example.org'",
    )
    second = session_with(
        service,
        "second",
        "Why does the build fail?",
        "execute_command",
        "Permission denied: /srv/deploy",
        failed=True,
    )
    found = service.search.find("config load", Filters()).hits
    assert [(h.session_id, h.version, h.kind) for h in found] == [(first, 2, "user")]
    assert found[0].title == "first" and found[0].model == "gpt-4o-mini"
    assert found[0].snippet == "Please tidy the configuration loader"
    # Tool output, with the word in a path; the hit names its tool and failure.
    (hit,) = service.search.find("deploy", Filters()).hits
    assert (hit.session_id, hit.kind, hit.tool, hit.failed) == (
        second,
        "tool_result",
        "execute_command",
        True,
    )
    # The tool call's arguments are searchable, and a word must start a word.
    assert {h.session_id for h in service.search.find("settings", Filters()).hits} == {first, second}
    assert service.search.find("ettings", Filters()).hits == []
    # Every word must appear in the same piece of text.
    assert service.search.find("permission 8080", Filters()).hits == []


def test_filters_narrow_hits_and_sessions(service):
    reader = session_with(service, "reader", "look at the settings", "read_file", "fine")
    failing = session_with(
        service, "failing", "run the settings check", "execute_command", "boom", failed=True
    )
    other_model = session_with(service, "other", "settings please", "read_file", "ok",
                               config=msgspec.structs.replace(CONFIG, model="claude-sonnet-4-5"))  # fmt: skip
    hits = service.search.find("settings", Filters(tool="read_file")).hits
    assert {h.session_id for h in hits} == {reader, other_model}
    assert all(h.tool == "read_file" for h in hits)
    assert [h.session_id for h in service.search.find("", Filters(failed=True)).hits] == [failing]
    assert {
        h.session_id for h in service.search.find("settings", Filters(model="claude-sonnet-4-5")).hits
    } == {other_model}
    listed = service.search.sessions(Filters(tool="read_file"), 10, 0)
    assert [s.id for s in listed] == [other_model, reader]  # the most recently updated first
    assert [s.id for s in service.search.sessions(Filters(failed=True), 10, 0)] == [failing]
    assert [
        s.id for s in service.search.sessions(Filters(model="gpt-4o-mini", status=Status.IDLE), 1, 1)
    ] == [reader]
    assert service.search.facets() == {
        "tools": ["execute_command", "read_file"],
        "models": ["claude-sonnet-4-5", "gpt-4o-mini"],
    }


def test_a_failed_turn_is_a_failure_and_deleted_sessions_are_not_found(service):
    session_id = service.create_session(CONFIG, title="broken")
    session = service.get_session(session_id)
    session.begin_turn("say something", "test")
    session.fail_turn("Missing credentials for the provider", "AuthenticationError")
    service.save(session)
    (hit,) = service.search.find("credentials", Filters(failed=True)).hits
    assert (hit.kind, hit.failed, hit.session_id) == ("error", True, session_id)
    assert [s.id for s in service.search.sessions(Filters(failed=True), 10, 0)] == [session_id]
    service.delete(session_id)
    assert service.search.find("credentials", Filters()).hits == []
    assert service.search.sessions(Filters(failed=True), 10, 0) == []


def test_pages_of_hits(service):
    ids = [session_with(service, f"s{n}", f"needle number {n}", "read_file", "x") for n in range(5)]
    first = service.search.find("needle", Filters(), limit=2)
    second = service.search.find("needle", Filters(), limit=2, offset=2)
    last = service.search.find("needle", Filters(), limit=2, offset=4)
    assert first.has_more and second.has_more and not last.has_more
    assert [h.session_id for h in first.hits + second.hits + last.hits] == ids[::-1]


@pytest.mark.parametrize(
    ("query", "filters", "problem"),
    [
        ("", Filters(), "give words to search for, or a filter"),
        ("  ", Filters(), "give words to search for, or a filter"),
        ("*** ---", Filters(), "at least one word"),
        (" ".join(f"w{n}" for n in range(17)), Filters(), "at most 16 words"),
    ],
)
def test_searches_that_cannot_be_run_say_why(service, query, filters, problem):
    with pytest.raises(UnsearchableQuery, match=problem):
        service.search.find(query, filters)


def test_operators_are_words_not_syntax(service):
    session_id = session_with(service, "ops", 'NEAR "quoted" OR AND NOT col:value', "read_file", "x")
    found = service.search.find('NEAR "quoted" OR AND NOT col:value', Filters()).hits
    assert [h.session_id for h in found] == [session_id]


def test_an_encrypted_store_keeps_no_words(store_env):
    from eventsourcing.cipher import AESCipher

    env = {
        **store_env,
        "CIPHER_TOPIC": "eventsourcing.cipher:AESCipher",
        "CIPHER_KEY": AESCipher.create_key(16),
    }
    service = SessionService(env)
    try:
        session_id = session_with(
            service, "secret", "the launch codes are 0000", "read_file", "y", failed=True
        )
        with pytest.raises(UnsearchableQuery, match="encrypted at rest"):
            service.search.find("launch", Filters())
        assert [s.id for s in service.search.sessions(Filters(tool="read_file", failed=True), 10, 0)] == [
            session_id
        ]
        (hit,) = service.search.find("", Filters(failed=True)).hits
        assert hit.snippet == ""
    finally:
        service.close()


def test_snippets_cut_around_the_first_word_found():
    text = "x " * 200 + "the needle is here" + " y" * 200
    cut = snippet(text, ["needle"], width=40)
    assert cut.startswith("…") and cut.endswith("…") and "needle is here" in cut
    assert words("Read the README-file, read it!") == ["read", "the", "readme", "file", "it"]


def test_a_files_diff_is_against_its_previous_change(service):
    session_id = service.create_session(CONFIG, title="files")
    v1, v2 = b"one\ntwo\n", b"one\nthree\n"
    service.blobs.add([v1, v2, b"\x00\xff binary"])
    session = service.get_session(session_id)

    def record(files: dict[str, bytes]) -> int:
        manifest = {p: FileState(hashlib.sha256(d).hexdigest(), len(d), 0o644) for p, d in files.items()}
        session.record_workspace(manifest)
        return session.version

    added = record({"notes.txt": v1, "blob.bin": b"\x00\xff binary"})
    changed = record({"notes.txt": v2, "blob.bin": b"\x00\xff binary"})
    service.save(session)
    diff = file_diff(service, session_id, "notes.txt", added)
    assert (diff.change, diff.changed_at, diff.previous_at) == ("added", added, None)
    assert "+one\n+two\n" in (diff.diff or "")
    diff = file_diff(service, session_id, "notes.txt")
    assert (diff.change, diff.changed_at, diff.previous_at) == ("modified", changed, added)
    assert "-two\n+three\n" in (diff.diff or "")
    assert file_diff(service, session_id, "blob.bin").note.startswith("binary")
    with pytest.raises(FileNotRecorded):
        file_diff(service, session_id, "nothing.txt")


# -- over HTTP, against a real server ---------------------------------------------------


def test_the_search_routes_answer_and_refuse_in_the_apis_shape(api_server, store):
    from tests.test_browser_routes import HEADERS, X, opened

    with opened(store) as service:
        session_id = session_with(service, "routes", "find the Straße", "read_file", "gone", failed=True)
    url = api_server.url

    def get(route: str, **params: str) -> httpx.Response:
        return httpx.get(f"{url}{route}", headers=HEADERS, params=params)

    found = get("/x-agentjournal/v1/search", q="STRASSE straße").json()
    assert found["data"] == []  # no word is folded into another
    (hit,) = get("/x-agentjournal/v1/search", q="straße", tool="").json()["data"]
    assert hit["session_id"] == f"sesn_{session_id.hex}" and hit["version"] == 2 and hit["kind"] == "user"
    listed = get(X, failed="true", tool="read_file", model="gpt-4o-mini").json()["data"]
    assert [s["id"] for s in listed] == [f"sesn_{session_id.hex}"]
    assert get("/x-agentjournal/v1/search/facets").json() == {
        "tools": ["read_file"],
        "models": ["gpt-4o-mini"],
    }
    files = get(f"{X}/sesn_{session_id.hex}/files/changes").json()
    assert files == {"version": 8, "data": []}  # no tool ran in a sandbox: no files
    for route, params, status, says in [
        ("/x-agentjournal/v1/search", {"q": "x", "failed": "maybe"}, 400, "'failed' must be true or false"),
        ("/x-agentjournal/v1/search", {"q": "x" * 1001}, 400, "at most 1000 characters"),
        ("/x-agentjournal/v1/search", {"q": "x", "status": "sleeping"}, 400, "'status' must be one of"),
        ("/x-agentjournal/v1/search", {"q": "x", "limit": "0"}, 400, "'limit' must be a whole number"),
        ("/x-agentjournal/v1/search", {}, 400, "give words to search for, or a filter"),
        (X, {"failed": "yes please"}, 400, "'failed' must be true or false"),
        (f"{X}/sesn_{session_id.hex}/files/diff", {}, 400, "'path'"),
        (f"{X}/sesn_{session_id.hex}/files/diff", {"path": "nothing.txt"}, 404, "names no such file"),
        (f"{X}/sesn_{session_id.hex}/files/changes", {"version": "99"}, 404, "99"),
        (f"{X}/sesn_{'0' * 32}/files/changes", {}, 404, "session"),
    ]:
        answer = httpx.get(f"{url}{route}", headers=HEADERS, params=params)
        assert answer.status_code == status, (route, params, answer.text)
        error = answer.json()["error"]
        assert says in error["message"], error
    without_key = httpx.get(f"{url}/x-agentjournal/v1/search", params={"q": "x"})
    assert without_key.status_code == 401


def test_a_listing_by_status_alone_never_builds_the_index(service):
    from agentjournal.application import browsing

    idle = session_with(service, "idle one", "hello", "read_file", "x")
    listed = browsing.find_sessions(service, Status.IDLE, filters=Filters(status=Status.IDLE))
    assert [s.id for s in listed.sessions] == [idle]
    assert "search" not in vars(service)  # the index is made on its first use only
    listed = browsing.find_sessions(service, Status.IDLE, filters=Filters(tool="read_file"))
    assert [s.id for s in listed.sessions] == [idle]
    assert "search" in vars(service)
