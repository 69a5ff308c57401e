"""The model call's fast path against litellm's full path, over real HTTP to the scripted
server: the same scripted replies give the same items, the same recorded reply (text, tool
calls, usage, cost) and the same errors either way, and the server receives the same
request; a provider or model outside the fast path's list, a call with parameters of its
own, and a process where a litellm callback listens all take litellm's full path.

Which path ran is observed, not inferred from timing: a profile hook records whether
litellm's ``completion`` or the fast path's call ran (:func:`paths_taken`). The full path
is forced the way an embedding application would force it: by registering a litellm
callback (:func:`listening`)."""

from __future__ import annotations

import re
import socket
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from agentjournal.application import ModelError
from agentjournal.application.ports import ModelReply, ModelRetryWarning, TextDelta
from agentjournal.domain import AssistantMessage, ToolCall, ToolResult, UserMessage
from agentjournal.infrastructure.models.direct_openai import DIRECT_PROVIDERS, DirectCall, direct_route
from agentjournal.infrastructure.models.litellm_model import LiteLLMModel, _litellm
from agentjournal.infrastructure.models.scripted import Reply, ScriptedModelServer, ScriptedToolCall
from tests.conftest import TEST_KEY

CONVERSATION = [
    UserMessage("list the folder"),
    AssistantMessage(content="", tool_calls=(ToolCall(id="call_a", name="ls", arguments='{"path": "."}'),)),
    ToolResult(tool_call_id="call_a", name="ls", output="a.txt"),
    UserMessage("and now?"),
]


def paths_taken(work: Callable[[], object]) -> set[str]:
    """Which paths a model call took while ``work`` ran in this thread: "litellm" when
    litellm's ``completion`` ran, "direct" when the fast path's call did."""
    _litellm()
    import litellm.main

    litellm_main = litellm.main.__file__
    direct = DirectCall.__iter__.__code__
    seen: set[str] = set()

    def profile(frame: Any, event: str, arg: object) -> None:
        if event == "call":
            code = frame.f_code
            if code is direct:
                seen.add("direct")
            elif code.co_name == "completion" and code.co_filename == litellm_main:
                seen.add("litellm")

    sys.setprofile(profile)
    try:
        work()
    finally:
        sys.setprofile(None)
    return seen


@contextmanager
def listening() -> Iterator[None]:
    """A litellm callback registered in the process for the block, as an embedding
    application registers one: every call takes litellm's full path meanwhile."""
    from litellm.integrations.custom_logger import CustomLogger

    litellm = _litellm()
    listener = CustomLogger()
    litellm.callbacks.append(listener)
    try:
        yield
    finally:
        for name in ("callbacks", "success_callback", "_async_success_callback",
                     "failure_callback", "_async_failure_callback", "input_callback"):  # fmt: skip
            setattr(litellm, name, [c for c in getattr(litellm, name) if c is not listener])


def model(base: str, name: str = "openai/m", **options: Any) -> LiteLLMModel:
    return LiteLLMModel(name, api_base=base, api_key=TEST_KEY, retry_delay=0.01, **options)


def items_of(adapter: LiteLLMModel, tools: list[Any] | None = None) -> list[Any]:
    from agentjournal.application.ports import ToolSpec

    specs = [ToolSpec(name="ls", description="list a folder", parameters={"type": "object"})]
    return list(adapter.stream("system", CONVERSATION, specs if tools is None else tools))


def both_ways(server: ScriptedModelServer, replies: list[Reply], run: Callable[[], Any]) -> tuple[Any, Any]:
    """``run`` on the fast path, then on litellm's full path, each against ``replies``;
    the outcomes (a result, or the error raised) and, checked here, the same requests."""
    outcomes, requests = [], []
    for way in ("direct", "litellm"):
        server.reset()
        server.enqueue(*replies)
        outcome: list[Any] = []

        def attempt(outcome: list[Any] = outcome) -> None:
            try:
                outcome.append(run())
            except ModelError as e:
                outcome.append(e)

        if way == "direct":
            taken = paths_taken(attempt)
        else:
            with listening():
                taken = paths_taken(attempt)
        assert taken == {way}
        outcomes.append(outcome[0])
        requests.append(list(server.requests))
    assert requests[0] == requests[1]
    return outcomes[0], outcomes[1]


def same_error(direct: object, full: object) -> str:
    assert isinstance(direct, ModelError) and isinstance(full, ModelError)
    assert (type(direct), str(direct), direct.retryable, direct.status_code) == (
        type(full), str(full), full.retryable, full.status_code,
    )  # fmt: skip
    return str(direct)


@pytest.mark.parametrize(
    "reply",
    [
        Reply(text="Here is the folder: a.txt and nothing else.", prompt_tokens=31, completion_tokens=9),
        Reply(text="I'll look.", tool_calls=[ScriptedToolCall("ls", {"path": "/tmp"}, id="call_1")]),
        Reply(
            tool_calls=[
                ScriptedToolCall("ls", {"path": "a"}, id="call_1"),
                ScriptedToolCall("ls", {"path": "b" * 40}, id="call_2"),
            ],
            cached_tokens=3,
        ),  # fmt: skip
    ],
    ids=["text", "a tool call", "parallel tool calls"],
)
@pytest.mark.parametrize("name", ["openai/gpt-4o-mini", "openai/a-local-model"], ids=["priced", "unpriced"])
def test_the_fast_path_gives_what_litellm_gives(model_server, reply, name):
    direct, full = both_ways(model_server, [reply], lambda: items_of(model(model_server.base_url, name)))
    assert direct == full
    final = direct[-1]
    assert isinstance(final, ModelReply) and final.usage.input_tokens > 0
    assert (final.cost_usd is None) == (name == "openai/a-local-model")
    assert "".join(i.text for i in direct if isinstance(i, TextDelta)) == reply.text == final.message.content


def test_a_cut_stream_is_found_the_same_way(model_server):
    direct, full = both_ways(
        model_server,
        [Reply(text="lost on the way", cut=4)],
        lambda: items_of(model(model_server.base_url, max_attempts=1)),
    )
    assert "stopped mid-reply" in same_error(direct, full)


@pytest.mark.parametrize(
    ("replies", "attempts", "said"),
    [
        (
            [Reply(status=401, error="invalid api key")],
            3,
            "HTTP 401.*invalid api key; check the model's name",
        ),
        ([Reply(status=500, error="it broke")] * 2, 2, r"HTTP 500.*it broke \(gave up after 2 attempts\)"),
    ],
    ids=["401", "500"],
)
def test_errors_are_mapped_as_litellm_maps_them(model_server, replies, attempts, said):
    def run() -> list[Any]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ModelRetryWarning)  # shown as tested in test_model_adapter
            return items_of(model(model_server.base_url, max_attempts=attempts))

    direct, full = both_ways(model_server, replies, run)
    assert re.search(said, same_error(direct, full))


def test_a_rate_limit_then_an_answer_is_one_call_either_way(model_server):
    def run() -> list[Any]:
        with pytest.warns(ModelRetryWarning, match="HTTP 429.*slow down"):
            return items_of(model(model_server.base_url, max_attempts=2))

    direct, full = both_ways(model_server, [Reply(status=429, error="slow down"), Reply(text="here")], run)
    assert direct == full and direct[-1].message.content == "here"


def test_a_refused_connection_names_the_address_either_way(model_server):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    direct, full = both_ways(model_server, [], lambda: items_of(model(base, max_attempts=1)))
    assert f"cannot connect to {base}" in same_error(direct, full)


@pytest.mark.parametrize("provider", sorted(DIRECT_PROVIDERS))
def test_each_direct_provider_is_sent_what_litellm_sends_it(model_server, provider):
    direct, full = both_ways(
        model_server, [], lambda: items_of(model(model_server.base_url, f"{provider}/m"))
    )
    assert direct == full and direct[-1].message.content.startswith("Noted.")


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("hosted_vllm/m", {}),  # its own handler
        ("deepinfra/m", {}),  # rewrites messages
        ("openai/o3-mini", {}),  # a reasoning model: token limits and roles translated
        ("openai/gpt-5-mini", {}),
        ("openai/m", {"extra": {"temperature": 0.2}}),  # a parameter litellm maps
    ],
)
def test_what_litellm_translates_takes_its_full_path(model_server, name, options):
    adapter = model(model_server.base_url, name, **options)
    assert paths_taken(lambda: items_of(adapter)) == {"litellm"}


def test_the_fast_path_returns_once_nothing_listens(model_server):
    adapter = model(model_server.base_url)
    assert paths_taken(lambda: items_of(adapter)) == {"direct"}
    with listening():
        assert paths_taken(lambda: items_of(adapter)) == {"litellm"}
    assert paths_taken(lambda: items_of(adapter)) == {"direct"}


def test_without_a_key_litellm_says_what_is_missing(model_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    adapter = LiteLLMModel("openai/m", api_base=model_server.base_url, max_attempts=1)
    failures: list[ModelError] = []
    taken = paths_taken(lambda: failures.append(pytest.raises(ModelError, items_of, adapter).value))
    assert taken == {"litellm"} and "check the model's name, its provider and its key" in str(failures[0])
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    assert paths_taken(lambda: items_of(adapter)) == {"direct"}


def test_a_stream_that_stalls_mid_reply_fails_the_same_way(model_server):
    """A read that times out after the response began: litellm's stream wrapper reports it
    as a mid-stream failure, and so does the fast path."""
    direct, full = both_ways(
        model_server, [Reply(text="slow and then silent", delay=3)],
        lambda: items_of(model(model_server.base_url, timeout=1, max_attempts=1)),
    )  # fmt: skip
    assert "timed out" in same_error(direct, full) and direct.retryable


def test_a_route_shows_no_key():
    route = direct_route(_litellm(), "openai/m", "http://127.0.0.1:9/v1", TEST_KEY)
    assert route is not None and route.key() == TEST_KEY and TEST_KEY not in repr(route)
