"""A process's first model call is not its slowest: ``warm_up`` loads litellm and makes a
call each way through the adapter to a scripted server of its own, and ``agentjournal serve``
does so before it says it listens, with the rest of ``ready_for_a_first_turn``, so its first
turn loads and builds nothing a later turn would not."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT, TEST_KEY
from tests.test_server_actions import prompt, send, until_idle
from tests.test_server_sessions import new_session

FIRST_CALL = """
import json, sys
from agentjournal.domain import UserMessage
from agentjournal.infrastructure.models.litellm_model import LiteLLMModel, warm_up
warm_up()
before = set(sys.modules)
replies = []
for name, direct in (("openai/gpt-4o-mini", True), ("openai/a-model-with-no-price", True),
                     ("openai/gpt-4o-mini", False)):
    model = LiteLLMModel(name, api_base={url!r}, api_key={key!r}, direct=direct)
    *_, reply = model.stream("", [UserMessage("hello")], ())
    replies.append(reply.message.content)
print(json.dumps({{"replies": replies, "loaded": sorted(set(sys.modules) - before)}}))
"""


@pytest.mark.slow
def test_after_the_warm_up_a_first_call_loads_no_model_code(model_server):
    """The warm-up's calls took the paths a real one takes: the first calls after it (on
    the fast path a model litellm has a price for and one it has none for, and one on
    litellm's full path) import nothing of litellm, the provider SDK or the HTTP client.
    The warm-up reached no server but its own."""
    done = subprocess.run(
        [sys.executable, "-c", FIRST_CALL.format(url=model_server.base_url, key=TEST_KEY)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=True,
    )  # fmt: skip
    first = json.loads(done.stdout.splitlines()[-1])
    assert [reply[:6] for reply in first["replies"]] == ["Noted."] * 3
    assert len(model_server.requests) == 3  # the calls themselves; the warm-up's went elsewhere
    model_code = [
        m for m in first["loaded"] if m.split(".")[0] in ("litellm", "openai", "httpx", "httpcore", "h11")
    ]
    assert model_code == []


FIRST_TURN = """
import asyncio, json, sys
from sse_starlette.sse import EventSourceResponse
from agentjournal.application import ManagedAgent, ManagedConfig
from agentjournal.infrastructure.models.litellm_model import LiteLLMModel
from agentjournal.infrastructure.server.serve import ready_for_a_first_turn
from agentjournal.infrastructure.stores import mapper
ready_for_a_first_turn()
model = LiteLLMModel("openai/m", api_base={url!r}, api_key={key!r})
agent = ManagedAgent(config=ManagedConfig(model="openai/m"), model=model, store={store!r})  # the store opened
before, schemas = set(sys.modules), mapper._schema.cache_info().misses
reply = agent.run("hello")


async def open_a_stream():
    EventSourceResponse(iter(()))  # takes anyio's lock, as the server's event stream does


asyncio.run(open_a_stream())
built = mapper._schema.cache_info().misses - schemas
print(json.dumps({{"reply": reply, "loaded": sorted(set(sys.modules) - before), "schemas": built}}))
"""


@pytest.mark.slow
def test_after_the_servers_warm_up_a_turn_and_a_stream_load_and_build_nothing(model_server, tmp_path):
    """A whole turn (its events written and read) and an event stream opened in a running
    loop, after ``ready_for_a_first_turn`` and the store's opening (a server's start): no
    module is imported (anyio's asyncio backend included) and no event schema built."""
    script = FIRST_TURN.format(url=model_server.base_url, key=TEST_KEY, store=str(tmp_path / "s.db"))
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=240, check=True
    )
    first = json.loads(done.stdout.splitlines()[-1])
    assert first["reply"].startswith("Noted.")
    assert (first["loaded"], first["schemas"]) == ([], 0)


@pytest.mark.slow
def test_serve_takes_a_turn_as_soon_as_it_says_it_listens(api_server, store, model_server):
    """Its warm-up made its call before the line, to no server but its own."""
    assert model_server.requests == []
    client = api_server.client()
    session_id = new_session(store)
    send(client, session_id, prompt("Hello, right away."))
    events = until_idle(client, session_id)
    texts = [e.content[0].text for e in events if e.type == "agent.message"]
    assert texts and texts[0].startswith("Noted.") and len(model_server.requests) == 1
