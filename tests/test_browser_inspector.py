"""The session browser as an inspector, in Chromium through Playwright against a real
server: search inside sessions and its filters, the session list's filters, the Files
tab (the folder at the selected event, a file's contents and its diff, a link to a file),
and a tampered session, which opens at its first bad event with fork and send refused.

Screenshots go where ``tests/test_browser.py`` puts its own; with
``AGENTJOURNAL_UPDATE_DOCS`` set, those of the search, the Files tab and the tampered
session are copied into ``docs/`` for the README.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import msgspec
import pytest

from tests.conftest import wait_until
from tests.test_browser import (  # noqa: F401 (fixtures)
    WITH_TOOLS,
    chromium,
    expect,
    open_session,
    page,
    screenshot,
    server,
    shots,
    sign_in,
    site,
    store,
    text,
    until_position,
)
from tests.test_browser_routes import CONFIG, HEADERS, X, create, get, opened, run_turn
from tests.test_search import session_with

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]


def run_command_turn(url: str, session_id: str, text: str) -> None:
    """A prompt whose command the confined host runs, waited for until its turn ends
    (the first call starts a sandbox, which a busy machine takes its time over)."""
    sent = httpx.post(f"{url}/v1/sessions/{session_id}/events", headers=HEADERS,
                      json={"events": [{"type": "user.message", "content": text}]})  # fmt: skip
    assert sent.status_code == 200, sent.text
    wait_until(
        lambda: httpx.get(f"{url}/v1/sessions/{session_id}", headers=HEADERS).json()["status"] != "running",
        f"the turn of {session_id} to end",
        seconds=150,
    )


def marker() -> str:
    """A word no other test's sessions hold (the module's store is shared)."""
    return f"mark{uuid.uuid4().hex[:10]}"


def test_search_finds_words_inside_sessions_and_opens_the_event(page, server, store, shots):  # noqa: F811
    word = marker()
    with opened(store) as service:
        session_with(service, f"tidy {word}", f"Please tidy the {word} loader", "read_file", "PORT = 8080")
        failing = session_with(
            service, f"deploy {word}", "Why does the deploy fail?", "execute_command",
            f"Permission denied: /srv/{word}/deploy", failed=True,
            config=msgspec.structs.replace(CONFIG, model="claude-sonnet-4-5"),
        )  # fmt: skip
    sign_in(page, server)
    page.click("#search-inside")
    page.wait_for_selector("#content-search:focus")
    page.keyboard.insert_text(f"{word} DEPLOY")  # every word, any case
    hits = page.locator("#hits .hit")
    expect(hits).to_have_count(1)
    expect(hits.first).to_contain_text("tool output")
    expect(hits.first).to_contain_text("execute_command")
    expect(hits.first.locator("mark")).to_have_text([word, "deploy"])
    page.fill("#content-search", word)
    expect(hits).to_have_count(2)
    assert "failed" in hits.nth(0).inner_text() and "prompt" in hits.nth(1).inner_text()  # the latest first
    screenshot(page, shots, "search.png", docs=True)
    # The filters narrow the hits, and the address keeps them.
    page.select_option("#tool-filter", "read_file")
    expect(hits).to_have_count(0)
    expect(page.locator("#hits-summary")).to_have_text("Nothing found.")
    page.select_option("#tool-filter", "")
    page.check("#failed-filter")
    expect(hits).to_have_count(1)
    page.uncheck("#failed-filter")
    page.select_option("#model-filter", "claude-sonnet-4-5")
    expect(hits).to_have_count(1)
    assert "model=claude-sonnet-4-5" in page.url
    page.reload()
    expect(hits).to_have_count(1)
    expect(page.locator("#content-search")).to_have_value(word)
    # A hit opens its session at its event.
    found = get(server.url, "/x-agentjournal/v1/search", q=word, model="claude-sonnet-4-5").json()["data"][0]
    hits.first.locator("a.hit-link").click()
    expect(page.locator("#session-title")).to_have_text(f"deploy {word}")
    head = get(server.url, f"{X}/sesn_{failing.hex}/state").json()["version"]
    until_position(page, found["version"], head)
    assert page.url.endswith(f"#/s/sesn_{failing.hex}/e/{found['version']}")


def test_a_search_the_server_refuses_says_why(page, server):  # noqa: F811
    sign_in(page, server, "#/search?q=" + quote("*** ---"))
    expect(page.locator(".notice[role=alert]")).to_contain_text("at least one word")
    expect(page.locator("#hits .hit")).to_have_count(0)


def test_the_session_list_filters_by_tool_failure_and_model(page, server, store):  # noqa: F811
    word = marker()
    with opened(store) as service:
        session_with(service, f"{word} reads", "look", "read_file", "fine")
        session_with(service, f"{word} fails", "run it", "execute_command", "boom", failed=True)
        session_with(service, f"{word} elsewhere", "look", "read_file", "fine",
                     config=msgspec.structs.replace(CONFIG, model="claude-sonnet-4-5"))  # fmt: skip
    sign_in(page, server, "#/?q=" + word)
    titles = page.locator("table.list td.title a")
    expect(titles).to_have_text([f"{word} elsewhere", f"{word} fails", f"{word} reads"])
    page.select_option("#tool-filter", "read_file")
    expect(titles).to_have_text([f"{word} elsewhere", f"{word} reads"])
    page.select_option("#model-filter", "gpt-4o-mini")
    expect(titles).to_have_text([f"{word} reads"])
    page.select_option("#tool-filter", "")
    page.select_option("#model-filter", "")
    page.check("#failed-filter")
    expect(titles).to_have_text([f"{word} fails"])
    assert "failed=true" in page.url
    page.reload()
    expect(titles).to_have_text([f"{word} fails"])


def test_the_files_tab_shows_the_folder_at_the_event_and_each_files_diff(page, server, store, shots):  # noqa: F811
    session_id = create(store, "Notes, changed twice", WITH_TOOLS)
    run_command_turn(
        server.url,
        session_id,
        "Write them:\n$ printf 'one\\ntwo\\n' > notes.txt && mkdir -p src && echo 'print(1)' > src/app.py",
    )
    run_command_turn(server.url, session_id, "Change one:\n$ printf 'one\\nthree\\n' > notes.txt")
    changes = get(server.url, f"{X}/{session_id}/files/changes").json()
    assert [f["path"] for f in changes["data"]] == ["notes.txt", "src/app.py"], changes
    diff = httpx.get(
        f"{server.url}{X}/{session_id}/files/diff", headers=HEADERS, params={"path": "notes.txt"}
    )
    first_change = diff.json()["previous_at"]
    head = changes["version"]
    open_session(page, server, session_id)
    page.click("#tab-files")
    entries = page.locator("#file-list .file-entry .path")
    expect(entries).to_have_text(["notes.txt", "src/app.py"])
    page.click("#file-list .file-entry[data-path='notes.txt']")
    expect(page.locator("#file-contents")).to_have_text("one\nthree\n")
    expect(page.locator("#file-change")).to_contain_text(
        f"changed at event {changes['data'][0]['changed_at']}"
    )
    expect(page.locator("#file-change")).to_contain_text(f"against event {first_change}")
    expect(page.locator("#file-diff .diff-line.del")).to_have_text(["-two"])
    expect(page.locator("#file-diff .diff-line.add")).to_have_text(["+three"])
    page.set_viewport_size({"width": 1280, "height": 1000})  # room for the diff and the contents
    screenshot(page, shots, "files.png", docs=True)
    page.set_viewport_size({"width": 1280, "height": 800})
    # Back to the first change: the folder, the contents and the diff as of then.
    page.eval_on_selector(
        "#replay", "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", first_change
    )
    until_position(page, first_change, head)
    expect(page.locator("#file-contents")).to_have_text("one\ntwo\n")
    expect(page.locator("#file-change")).to_contain_text(f"added at event {first_change}")
    expect(page.locator("#file-diff .diff-line.add")).to_have_text(["+one", "+two"])
    # Before any file: none.
    page.eval_on_selector("#replay", "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", 2)
    expect(page.locator("#files-heading")).to_have_text("No files as of event 2.")
    # A link to a file opens the session there, with the file shown.
    page.goto(f"{server.url}/#/s/{session_id}/e/{first_change}/f/{quote('src/app.py', safe='')}")
    until_position(page, first_change, head)
    expect(page.locator("#tab-files")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#file-contents")).to_have_text("print(1)\n")
    expect(page.locator("#file-link")).to_have_attribute(
        "href", f"#/s/{session_id}/e/{first_change}/f/{quote('src/app.py', safe='')}"
    )


def test_a_tampered_session_opens_at_its_first_bad_event_without_fork_or_send(page, server, store, shots):  # noqa: F811
    session_id = create(store, "Altered after the fact")
    run_turn(server.url, session_id, "Hello, my name is Ada.")
    run_turn(server.url, session_id, "What is my name?")
    head = get(server.url, f"{X}/{session_id}/state").json()["version"]
    with sqlite3.connect(Path(store)) as db:
        # The first event after the first prompt that names Ada (the model's reply): rewritten.
        altered, state = next(
            (version, state)
            for version, state in db.execute(
                "SELECT originator_version, state FROM stored_events WHERE originator_id = ? "
                "AND originator_version > 2 ORDER BY originator_version",
                (session_id[5:],),
            )
            if b"Ada" in state
        )
        db.execute(
            "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = ?",
            (state.replace(b"Ada", b"Eve"), session_id[5:], altered),
        )
    open_session(page, server, session_id)
    expect(page.locator("#verify-badge")).to_contain_text(f"Chain broken at event {altered}")
    until_position(page, altered, head)
    notice = page.locator("#tampered-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text(f"fails its check at event {altered}")
    expect(notice).to_contain_text("cannot be forked or continued")
    for control in ("#fork", "#send", "#prompt"):
        expect(page.locator(control)).to_be_disabled()
        assert "cannot be forked or continued" in (page.get_attribute(control, "title") or "")
    screenshot(page, shots, "tampered-session.png", docs=True)
    # Moving elsewhere keeps them refused.
    page.click("text=Latest")
    until_position(page, head, head)
    expect(page.locator("#fork")).to_be_disabled()
    assert re.search(r"Tampered log", text(page, "#tampered-notice"))
