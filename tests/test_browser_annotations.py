"""The session page's annotations panel in a real browser (Chromium through Playwright),
against a real server: annotating the selected event, the list with links to each event,
and the check of the annotations' own log, intact and then altered."""

from __future__ import annotations

import re
import sqlite3
from uuid import UUID

import httpx
import pytest

from agentjournal.domain.annotation import annotation_log_id
from tests.test_browser import (  # noqa: F401 (the module's fixtures, shared)
    chromium,
    expect,
    open_session,
    page,
    screenshot,
    server,
    shots,
    site,
    store,
)
from tests.test_browser_routes import HEADERS, X, create, get, grow

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def test_an_event_is_annotated_from_the_page(page, server, store, shots):  # noqa: F811
    session_id = create(store, "annotate me")
    grow(store, session_id, 12)  # a turn with a tool call, recorded without a model
    head = get(server.url, f"{X}/{session_id}/verify").json()
    open_session(page, server, session_id)
    expect(page.locator("#annotations-status")).to_have_text("No annotations yet.")

    page.fill("#replay", "2")  # the prompt
    page.dispatch_event("#replay", "input")
    expect(page.locator("#annotation-target")).to_have_text("event 2")
    page.fill("#annotation-note", "a friendly prompt")
    page.fill("#annotation-score", "0.75")
    page.click("#annotate")

    expect(page.locator("#annotations-list li")).to_have_count(1)
    item = page.locator("#annotations-list li").first
    expect(item).to_contain_text("event 2")
    expect(item).to_contain_text("UserMessageAdded")
    expect(item).to_contain_text("score 0.75")
    expect(item).to_contain_text("a friendly prompt")
    expect(page.locator("#annotations-status")).to_contain_text("1 annotations; their log is intact")
    expect(page.locator("#annotation-note")).to_have_value("")
    screenshot(page, shots, "annotations.png", docs=True, only="#annotations")

    (recorded,) = get(server.url, f"{X}/{session_id}/annotations").json()["data"]
    log = get(server.url, f"{X}/{session_id}/log").json()["data"]
    assert recorded["event"] == {"version": 2, "type": "UserMessageAdded", "hash": log[1]["payload"]["hash"]}
    assert (recorded["note"], recorded["score"]) == ("a friendly prompt", 0.75)
    after = get(server.url, f"{X}/{session_id}/verify").json()
    assert (after["events"], after["head"]) == (head["events"], head["head"])  # the session's log as it was

    page.fill("#replay", "1")
    page.dispatch_event("#replay", "input")
    item.locator("a").click()  # the annotation's link opens its event
    expect(page.locator("#replay-position")).to_have_text(re.compile(r"^2 of "))


def test_an_empty_annotation_is_refused_on_the_page(page, server, store):  # noqa: F811
    session_id = create(store, "say something")
    open_session(page, server, session_id)
    page.click("#annotate")
    expect(page.locator(".notice:not(.tampered)")).to_contain_text("needs a note, a score, or both")
    expect(page.locator("#annotations-list li")).to_have_count(0)


def test_an_altered_annotation_log_shows_on_the_page(page, server, store):  # noqa: F811
    session_id = create(store, "keep my notes honest")
    made = get(server.url, f"{X}/{session_id}/annotations")
    assert made.json()["data"] == []
    posted = httpx.post(
        f"{server.url}{X}/{session_id}/annotations", headers=HEADERS, json={"version": 1, "note": "genuine"}
    )
    assert posted.status_code == 200, posted.text
    log_id = annotation_log_id(UUID(session_id[5:])).hex
    with sqlite3.connect(store) as db:
        (state,) = db.execute(
            "SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = 2", (log_id,)
        ).fetchone()
        db.execute(
            "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = 2",
            (bytes(state).replace(b"genuine", b"forged!"), log_id),
        )
    open_session(page, server, session_id)
    expect(page.locator("#annotations-status")).to_contain_text("Their log is broken at its event 2")
    expect(page.locator("#verify-badge")).to_contain_text(
        "Chain intact"
    )  # the session's own log is untouched
