"""The session browser in a real browser: Debian's Chromium driven by Playwright, against a
real server process and a store these tests fill (sessions made through the Python side,
turns run through the API on the scripted model).

Screenshots of the main views go to ``$AGENTJOURNAL_TEST_OUTPUT/browser`` (default:
``test-output/browser`` in the repository, which git ignores) for review; the session
view and the fork tree there are the ones in ``docs/``.

Without Playwright or Chromium these tests are skipped, except under CI, where that fails.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from agentjournal.infrastructure.models.scripted import Reply
from tests.conftest import ROOT, wait_until
from tests.serving import API_KEY, RunningServer, running_server
from tests.test_browser_routes import CONFIG, HEADERS, X, create, fork, get, grow, run_turn

try:
    from playwright.sync_api import expect
except ImportError:  # the chromium fixture skips every test, or fails them under CI
    expect = None  # type: ignore[assignment]

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("AGENTJOURNAL_CHROMIUM", "/usr/bin/chromium")
WITH_TOOLS = msgspec.structs.replace(CONFIG, tools=("execute_command",))
DOCS = ROOT / "docs"


def unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{why}; CI must run the browser tests")
    pytest.skip(why)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if expect is None:
        unavailable("Playwright is not installed (pip install -e '.[test,browser]')")
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        unavailable(f"no Chromium at {CHROMIUM} (scripts/setup installs Debian's chromium as root)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    folder = Path(os.environ.get("AGENTJOURNAL_TEST_OUTPUT", ROOT / "test-output")) / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page: Any, shots: Path, name: str, docs: bool = False, only: str = "") -> None:
    """Save the page (or the element ``only`` selects) for review; with
    ``AGENTJOURNAL_UPDATE_DOCS`` set, ``docs`` ones are copied for the README too."""
    (page.locator(only) if only else page).screenshot(path=shots / name)
    if docs and os.environ.get("AGENTJOURNAL_UPDATE_DOCS"):
        shutil.copyfile(shots / name, DOCS / f"browser-{name}")


@pytest.fixture(scope="module")
def site(_server, tmp_path_factory) -> Iterator[tuple[RunningServer, Path]]:  # type: ignore[no-untyped-def]
    """One server and store for the module; each test makes its own sessions."""
    folder = tmp_path_factory.mktemp("browser")
    store = folder / "sessions.db"
    with running_server(
        _server.base_url, store, store_env={"AGENTJOURNAL_HOME": str(folder / "home")}
    ) as server:
        yield server, store


@pytest.fixture
def server(site, model_server) -> RunningServer:  # type: ignore[no-untyped-def]
    """The module's server; the scripted model's script and request log start empty."""
    return site[0]


@pytest.fixture
def store(site) -> Path:  # type: ignore[no-untyped-def]
    return site[1]


@pytest.fixture
def page(chromium, server) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """A fresh tab (its own sessionStorage) on a laptop-sized window. Every request it
    makes is recorded, to check where they go and that no key is ever in a URL."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    requested: list[str] = []
    tab.on("request", lambda request: requested.append(request.url))
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, errors
    assert all(url.startswith(server.url) for url in requested), requested
    assert not any(API_KEY in url for url in requested)


def sign_in(page: Any, server: RunningServer, where: str = "") -> None:
    page.goto(f"{server.url}/{where}")
    page.fill("#api-key", API_KEY)
    page.click("button[type=submit]")
    page.wait_for_selector("#api-key", state="detached")


def open_session(page: Any, server: RunningServer, session_id: str) -> None:
    sign_in(page, server, f"#/s/{session_id}")
    page.wait_for_selector(".badge.ok, .badge.broken")


def text(page: Any, selector: str) -> str:
    return str(page.inner_text(selector))


def confirm(page: Any, choice: str) -> None:
    """Answer the page's confirmation dialog."""
    page.locator("dialog.confirm").get_by_role("button", name=choice, exact=True).click()


def until_position(page: Any, version: int | str, head: int | str) -> None:
    """Wait for the view to show the session as of ``version``."""
    expect(page.locator("#replay-position")).to_have_text(f"{version} of {head}")


# -- the tests ------------------------------------------------------------------------


def test_a_key_is_asked_for_once_and_a_wrong_one_is_refused(page, server, store):
    create(store, "behind the key")
    page.goto(f"{server.url}/")
    page.fill("#api-key", "not-the-key")
    page.click("button[type=submit]")
    page.wait_for_selector("#login-error:not([hidden])")
    assert "invalid API key" in text(page, "#login-error")
    assert page.evaluate("sessionStorage.length") == 0
    page.fill("#api-key", API_KEY)
    page.click("button[type=submit]")
    page.wait_for_selector("table.list a:text('behind the key')")
    # The key lives in this tab only: a reload keeps it, "Forget key" drops it.
    page.reload()
    page.wait_for_selector("table.list a:text('behind the key')")
    page.click("#forget-key")
    page.wait_for_selector("#api-key")
    assert page.evaluate("sessionStorage.length") == 0


def test_sessions_are_listed_searched_filtered_and_paged(page, server, store, shots):
    marker = f"inventory-{time.monotonic_ns()}"
    ids = [create(store, f"{marker} {n:02}") for n in range(55)]
    closed = create(store, f"{marker} closed")
    assert httpx.post(f"{server.url}{X}/{closed}/terminate", headers=HEADERS, json={}).status_code == 200
    sign_in(page, server)
    page.keyboard.press("/")  # the search box takes the focus
    page.keyboard.insert_text(marker)  # one input event, as a paste
    newest = [f"{marker} closed"] + [f"{marker} {n:02}" for n in range(54, 5, -1)]
    expect(page.locator("table.list td.title a")).to_have_text(newest)
    expect(page.locator("#page-range")).to_have_text("1–50")
    screenshot(page, shots, "sessions.png")
    page.click("text=Older →")
    expect(page.locator("#page-range")).to_have_text("51–56")
    assert page.locator("table.list td.title a").all_inner_texts()[-1] == f"{marker} 00"
    page.select_option("#status-filter", "terminated")
    expect(page.locator("table.list td.title a")).to_have_count(1)
    assert text(page, "table.list td.title a") == f"{marker} closed"
    page.select_option("#status-filter", "")
    page.fill("#search", ids[7][5:13])  # the start of an id
    expect(page.locator("table.list td.title a")).to_have_text([f"{marker} 07"])
    page.click(f"text={marker} 07")
    expect(page.locator("#session-title")).to_have_text(f"{marker} 07")


def test_a_session_replays_to_the_event_the_slider_chooses(page, server, store, shots):
    session_id = create(store, "A look around the workspace", WITH_TOOLS)
    run_turn(server.url, session_id, "Hello, my name is Ada.")
    run_turn(server.url, session_id, "Have a look:\n$ echo hello from the tool")
    run_turn(server.url, session_id, "What is my name?")
    head = get(server.url, f"{X}/{session_id}/state").json()["version"]
    open_session(page, server, session_id)
    conversation = text(page, "#conversation")
    assert "Your name is Ada." in conversation
    assert (
        "execute_command" in conversation
        and "exit 0" in conversation
        and "hello from the tool" in conversation
    )
    assert "Turn 3" in conversation
    assert text(page, "#session-compute") == "confined host"  # where its tools ran
    until_position(page, head, head)
    screenshot(page, shots, "session.png", docs=True)

    def shows_the_state_at(version: int) -> None:
        until_position(page, version, head)
        page.wait_for_selector(f"#fork:text('Fork at event {version}')")
        state = get(server.url, f"{X}/{session_id}/state", version=version).json()
        usage = state["usage"]
        assert text(page, "#state-usage") == f"{usage['input_tokens']} in / {usage['output_tokens']} out"
        assert text(page, "#state-status") == state["status"]
        assert text(page, "#state-messages") == f"{len(state['messages'])} messages"
        shown = page.locator("#conversation .msg.user .body").all_inner_texts()
        assert shown == [m["content"] for m in state["messages"] if m["type"] == "user"]
        assert page.locator(".log-row.selected .v").inner_text() == str(version)

    page.focus("#replay")
    page.keyboard.press("Home")
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    shows_the_state_at(6)
    page.eval_on_selector(
        "#replay", "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }", head - 4
    )
    shows_the_state_at(head - 4)
    screenshot(page, shots, "session-replaying.png")

    # The log chooses the event too: click a row, then move with the keys.
    page.click(".log-row[data-version='3']")
    until_position(page, 3, head)
    page.keyboard.press("ArrowDown")
    shows_the_state_at(4)
    assert "Event 4" in text(page, ".log-detail")
    assert len(text(page, ".log-detail code")) == 64
    page.click("text=Latest")
    until_position(page, head, head)


def test_the_fork_tree_leads_to_each_fork_and_a_diff(page, server, store, shots):
    root = create(store, "the original")
    run_turn(server.url, root, "Hello, my name is Ada.")
    run_turn(server.url, root, "What is my name?")
    child = fork(server.url, root, 6)
    httpx.post(f"{server.url}/v1/sessions/{child}", headers=HEADERS, json={"title": "a second try"})
    run_turn(server.url, child, "Tell me a story instead.")
    grandchild = fork(server.url, child, 7)
    httpx.post(f"{server.url}/v1/sessions/{grandchild}", headers=HEADERS, json={"title": "a third try"})
    other = fork(server.url, root, 2)
    httpx.post(f"{server.url}/v1/sessions/{other}", headers=HEADERS, json={"title": "an early fork"})
    open_session(page, server, root)
    page.click("#tree-link")
    page.wait_for_selector("ul.tree")
    nodes = page.locator("ul.tree .node").all_inner_texts()
    assert len(nodes) == 4
    assert nodes[0].startswith("the original")
    assert nodes[1].startswith("forked at event 2") and "an early fork" in nodes[1]
    assert nodes[2].startswith("forked at event 6") and "a second try" in nodes[2]
    assert nodes[3].startswith("forked at event 7") and "a third try" in nodes[3]
    screenshot(page, shots, "fork-tree.png", docs=True, only="main")

    page.click("ul.tree a:text('a second try')")
    page.wait_for_selector(".badge.ok")
    assert text(page, "#session-title") == "a second try"
    assert f"forked from {root[5:13]} at event 6" in text(page, ".session-head .meta")
    page.click("#tree-link")
    page.wait_for_selector(".node.current")
    assert "a second try" in text(page, ".node.current")
    page.click(".node:has-text('the original') .diff-link")
    page.wait_for_selector("#diff-relation")
    assert "2 messages shared" in text(page, "#diff-relation")
    panes = page.locator(".diff .pane").all_inner_texts()
    assert "Tell me a story instead." in panes[0] and "What is my name?" in panes[1]
    screenshot(page, shots, "diff.png")


def test_a_live_turn_appears_as_it_is_recorded(page, server, store, model_server):
    session_id = create(store, "live")
    open_session(page, server, session_id)
    page.wait_for_selector("#live-status.live")
    model_server.enqueue(Reply(text="Streaming in, word by word.", delay=0.05))
    sent = httpx.post(f"{server.url}/v1/sessions/{session_id}/events", headers=HEADERS,
                      json={"events": [{"type": "user.message", "content": "Are you there?"}]})  # fmt: skip
    assert sent.status_code == 200
    page.wait_for_selector("#live-feed .type:text('user.message')")
    page.wait_for_selector("#live-feed .type:text('agent.message')")
    page.wait_for_selector("#live-feed .type:text('session.status_idle')")
    page.wait_for_selector("#conversation :text('Streaming in, word by word.')")
    head = get(server.url, f"{X}/{session_id}/state").json()["version"]
    until_position(page, head, head)
    page.wait_for_selector(f".log-row[data-version='{head}'] .type:text('TurnCompleted')")
    page.wait_for_selector(f"#verify-badge.ok:has-text('{head} events')")

    # A prompt sent from the page runs the same way.
    page.fill("#prompt", "My name is Grace.")
    page.click("#send")
    page.wait_for_selector("#conversation .msg.user :text('My name is Grace.')")
    page.locator("#live-feed .type", has_text="session.status_idle").nth(1).wait_for()
    page.wait_for_selector("#conversation .msg.assistant >> nth=1")


def test_a_fork_made_on_the_page_opens_at_the_chosen_event(page, server, store):
    session_id = create(store, "fork me")
    run_turn(server.url, session_id, "Hello, my name is Ada.")
    run_turn(server.url, session_id, "What is my name?")
    open_session(page, server, session_id)
    # The page has finished loading (the chain's check, then the costs) before it is used.
    expect(page.locator("#costs-total")).to_contain_text("model call")
    page.click(".log-row[data-version='6']")
    page.wait_for_selector("#fork:text('Fork at event 6')")
    page.click("#fork")
    page.wait_for_url(lambda url: session_id not in url)
    forked = page.evaluate("location.hash").split("/")[-1]
    page.wait_for_selector(".badge.ok")
    assert f"forked from {session_id[5:13]} at event 6" in text(page, ".session-head .meta")
    state = get(server.url, f"{X}/{forked}/state").json()
    assert state["lineage"]["parent_version"] == 6
    assert [m["content"] for m in state["messages"] if m["type"] == "user"] == ["Hello, my name is Ada."]
    assert page.locator("#conversation .msg.user").count() == 1


def test_terminate_and_interrupt_ask_first(page, server, store, model_server):
    session_id = create(store, "to be stopped")
    model_server.enqueue(Reply(text="This takes a while.", hold=True))  # running until released
    httpx.post(f"{server.url}/v1/sessions/{session_id}/events", headers=HEADERS,
               json={"events": [{"type": "user.message", "content": "Think hard."}]})  # fmt: skip
    open_session(page, server, session_id)
    page.wait_for_selector("#interrupt:enabled")
    page.click("#interrupt")
    confirm(page, "Cancel")
    assert get(server.url, f"/v1/sessions/{session_id}").json()["status"] == "running"
    page.click("#interrupt")
    confirm(page, "Interrupt")
    page.wait_for_selector("#live-feed .type:text('user.interrupt')")
    page.wait_for_selector(".session-head .pill.status-idle")
    model_server.release()  # the interrupted turn reads the rest of its reply, and stops

    page.click("#terminate")
    page.keyboard.press("Escape")  # the dialog closes; nothing happens
    page.wait_for_selector("dialog.confirm", state="detached")
    assert get(server.url, f"/v1/sessions/{session_id}").json()["status"] == "idle"
    page.click("#terminate")
    confirm(page, "Terminate")
    page.wait_for_selector(".session-head .pill.status-terminated")
    assert get(server.url, f"/v1/sessions/{session_id}").json()["status"] == "terminated"
    assert page.is_disabled("#terminate") and page.is_disabled("#prompt")


def test_a_tampered_session_shows_a_red_badge(page, server, store, shots):
    session_id = create(store, "tamper with me")
    run_turn(server.url, session_id, "Hello, my name is Ada.")
    open_session(page, server, session_id)
    assert "Chain intact" in text(page, "#verify-badge")
    head = get(server.url, f"{X}/{session_id}/verify").json()["head"]
    assert text(page, "#head-hash") == head
    page.click("text=Copy")
    assert page.evaluate("navigator.clipboard.readText()") == head
    with sqlite3.connect(store) as db:
        (state,) = db.execute(
            "SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = 2",
            (session_id[5:],),
        ).fetchone()
        assert b"my name is Ada" in state
        db.execute(
            "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = 2",
            (state.replace(b"my name is Ada", b"my name is Eve"), session_id[5:]),
        )
    page.reload()
    page.wait_for_selector(".badge.broken")
    assert "Chain broken at event 2" in text(page, "#verify-badge")
    screenshot(page, shots, "tampered.png")
    page.click("#verify-badge")  # shows the event that is not as written
    expect(page.locator("#replay-position")).to_have_text(re.compile(r"^2 of "))


def test_a_ten_thousand_event_session_paints_only_the_rows_in_view(page, server, store, shots):
    session_id = create(store, "ten thousand events")
    grow(store, session_id, 10_000)
    sign_in(page, server)
    page.goto(f"{server.url}/#/s/{session_id}")
    wait_until(
        lambda: page.evaluate("performance.getEntriesByName('session-view-painted').length"),
        "the session view to be painted",
    )
    assert text(page, "#replay-position") == "10,000 of 10,000"
    assert page.locator(".log-row").count() < 100  # only the rows in view exist
    page.wait_for_selector(".badge.ok")
    screenshot(page, shots, "ten-thousand.png")

    # Anywhere in the log at once: its top, then its middle through the slider.
    page.focus(".log-rows")
    page.keyboard.press("Home")
    page.wait_for_selector(".log-row[data-version='1'] .type:text('SessionStarted')")
    page.eval_on_selector("#replay", "(el) => { el.value = 5000; el.dispatchEvent(new Event('input')); }")
    page.wait_for_selector("#replay-state:has-text('Replaying: the session as of event 5,000')")
    state = get(server.url, f"{X}/{session_id}/state", version=5000).json()
    assert text(page, "#state-messages") == f"{len(state['messages']):,} messages"
    expect(page.locator(".log-row.selected[data-version='5000'] .type")).not_to_have_text("…")


# -- cost and timing, links to one event, not found, failed sessions, no keys ----------


@pytest.mark.timeout(180)
def test_cost_and_timing_per_call_turn_and_session_link_to_their_events(page, server, store, shots):
    session_id = create(store, "What a look around costs", WITH_TOOLS)
    run_turn(server.url, session_id, "Have a look:\n$ echo hello from the tool")
    run_turn(server.url, session_id, "Thanks")
    head = get(server.url, f"{X}/{session_id}/state").json()["version"]
    trace = get(server.url, f"{X}/{session_id}/trace").json()
    open_session(page, server, session_id)

    expect(page.locator("#session-cost")).to_have_text("$" + f"{trace['cost']['usd']:.6f}")
    expect(page.locator("#costs-total")).to_contain_text("3 model calls")
    rows = page.locator("#costs-calls tbody tr")
    expect(rows).to_have_count(2 + 3 + 1)  # two turns, three model calls, one tool call
    assert page.locator("#costs-calls tr.turn").all_inner_texts()[0].startswith("Turn 1 (end_turn)")
    expect(page.locator("#costs-calls tr.call.tool")).to_contain_text("tool execute_command")
    # The waterfall: turn 1's calls in order on its time axis, each after the one before.
    lefts = page.locator("#costs-calls tbody tr").evaluate_all(
        "rows => rows.slice(1, 4).map(row => parseFloat(row.querySelector('.bar').style.left))"
    )
    assert lefts == sorted(lefts) and lefts[0] < lefts[2]
    expect(page.locator("#costs-calls tr.call.tool .bar.tool")).to_have_count(1)
    expect(page.locator("#tool-stats tbody tr")).to_have_count(1)
    expect(page.locator("#tool-stats tbody td").first).to_have_text("execute_command")
    screenshot(page, shots, "costs.png", docs=True, only="#costs")

    first_call = trace["turns"][0]["model_calls"][0]["version"]
    page.locator("#costs-calls tr.call.model a").first.click()
    until_position(page, first_call, head)
    assert page.url.endswith(f"#/s/{session_id}/e/{first_call}")


@pytest.mark.timeout(180)
def test_a_link_to_one_event_opens_the_replay_there(page, server, store):
    session_id = create(store, "Linked")
    run_turn(server.url, session_id, "Hello")
    head = get(server.url, f"{X}/{session_id}/state").json()["version"]
    sign_in(page, server, f"#/s/{session_id}/e/2")
    until_position(page, 2, head)
    expect(page.locator("#event-link")).to_have_attribute("href", f"#/s/{session_id}/e/2")
    page.fill("#replay", str(head))
    page.dispatch_event("#replay", "input")
    expect(page.locator("#event-link")).to_have_attribute("href", f"#/s/{session_id}/e/{head}")


@pytest.mark.timeout(180)
def test_addresses_and_sessions_that_are_not_there_get_a_not_found_page(page, server, shots):
    sign_in(page, server, "#/nowhere/at/all")
    expect(page.locator("#not-found h1")).to_have_text("Not found")
    missing = f"sesn_{uuid.uuid4().hex}"
    page.goto(f"{server.url}/#/s/{missing}")
    expect(page.locator("#not-found h1")).to_have_text("Not found")
    assert page.title() == "Not found · agentjournal"
    page.click("#not-found a")
    page.wait_for_selector("table.list")


@pytest.mark.timeout(180)
def test_a_failed_session_shows_the_status_error(page, server, store, model_server):
    session_id = create(store, "Goes wrong")
    model_server.enqueue(Reply(status=400, error="the request was refused"))
    run_turn(server.url, session_id, "Hello")
    open_session(page, server, session_id)
    expect(page.locator("#session-status .pill")).to_have_text("error")
    expect(page.locator("#costs-calls tr.turn")).to_contain_text("(error)")


@pytest.mark.timeout(180)
def test_a_server_without_keys_never_asks_for_one(chromium, model_server, tmp_path):
    keyless_store = tmp_path / "sessions.db"
    create(keyless_store, "Open to this machine")
    with running_server(model_server.base_url, keyless_store, keys="", extra=("--no-auth",)) as open_server:
        context = chromium.new_context()
        tab: Any = context.new_page()
        tab.set_default_timeout(30_000)
        try:
            tab.goto(f"{open_server.url}/")
            tab.wait_for_selector("table.list a:text('Open to this machine')")
            assert tab.locator("#api-key").count() == 0
        finally:
            context.close()


def test_a_self_hosted_session_shows_its_work_items_state_and_the_worker_of_each_call(
    page, server, model_server, tmp_path, shots
):
    from agentjournal.infrastructure.models.scripted import ScriptedToolCall
    from tests.test_self_hosted import ended, environment_worker, mint_key, prompt, self_hosted_session

    client = server.client()
    environment_id, session_id = self_hosted_session(client)
    key = mint_key(client, environment_id)
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("bash", {"command": "echo from-the-worker"})]), Reply(text="Done.")
    )
    open_session(page, server, session_id)
    expect(page.locator("#session-compute")).to_have_text("self-hosted workers")
    expect(page.locator("#session-work")).to_have_text("no work queued yet")
    prompt(client, session_id, "Go.")
    expect(page.locator("#session-work")).to_have_text("work queued", timeout=60_000)  # no worker yet
    with environment_worker(server, environment_id, key, tmp_path / "w", "browser-worker"):
        expect(page.locator("#session-work")).to_have_text("work active on browser-worker", timeout=60_000)
        wait_until(lambda: ended(client, session_id), "the turn's end", 60)
        page.wait_for_selector("#conversation .tool-result .meta:has-text('ran on worker')")
        assert text(page, "#conversation .tool-result .meta").endswith("/browser-worker")
        screenshot(page, shots, "self-hosted.png")
        work = client.with_options(api_key=None, auth_token=key).beta.environments.work  # type: ignore[call-arg]
        item = next(iter(work.list(environment_id)))
        client.beta.environments.work.stop(item.id, environment_id=environment_id, force=True)
        expect(page.locator("#session-work")).to_have_text("work stopped on browser-worker", timeout=60_000)
