"""A process's first model call is not its slowest: ``warm_up`` loads litellm and makes one
call through the adapter to a scripted server of its own, and ``agentjournal serve`` does so
before it says it listens, so its first turn loads nothing a later turn would not."""

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
for name in ("openai/gpt-4o-mini", "openai/a-model-with-no-price"):
    model = LiteLLMModel(name, api_base={url!r}, api_key={key!r})
    *_, reply = model.stream("", [UserMessage("hello")], ())
    replies.append(reply.message.content)
print(json.dumps({{"replies": replies, "loaded": sorted(set(sys.modules) - before)}}))
"""


@pytest.mark.slow
def test_after_the_warm_up_a_first_call_loads_no_model_code(model_server):
    """The warm-up's call took the path a real one takes: the first calls after it (a model
    litellm has a price for, and one it has none for) import nothing of litellm, the
    provider SDK or the HTTP client. The warm-up reached no server but its own."""
    done = subprocess.run(
        [sys.executable, "-c", FIRST_CALL.format(url=model_server.base_url, key=TEST_KEY)],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=True,
    )  # fmt: skip
    first = json.loads(done.stdout.splitlines()[-1])
    assert [reply[:6] for reply in first["replies"]] == ["Noted."] * 2
    assert len(model_server.requests) == 2  # the calls themselves; the warm-up's went elsewhere
    model_code = [
        m for m in first["loaded"] if m.split(".")[0] in ("litellm", "openai", "httpx", "httpcore", "h11")
    ]
    assert model_code == []


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
