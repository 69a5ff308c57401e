"""The litellm adapter, over real HTTP against the scripted server: how long a model that does
not answer can hold a turn, how many requests one model call makes at most, that a stream
abandoned mid-reply or read to its end gives its connection back, and that litellm logs a
call only while something in the process listens."""

from __future__ import annotations

import gc
import re
import socket
import time
from pathlib import Path

import pytest

from agentjournal.application import ManagedAgent, ManagedConfig, ModelError
from agentjournal.application.ports import ModelRetryWarning, ModelSetupError, TextDelta
from agentjournal.domain import UserMessage
from agentjournal.infrastructure.models.litellm_model import LiteLLMModel, check_model_setup
from agentjournal.infrastructure.models.scripted import Reply, ScriptedModelServer
from tests.conftest import TEST_KEY, wait_until


def adapter(server: ScriptedModelServer, **bounds: float) -> LiteLLMModel:
    return LiteLLMModel("openai/m", api_base=server.base_url, api_key=TEST_KEY, retry_delay=0.01, **bounds)


def call(model: LiteLLMModel) -> None:
    """One model call, consumed to its end."""
    list(model.stream("system", [UserMessage("hello")], []))


def test_a_hung_model_fails_the_turn_after_its_timeout_and_attempts(model_server, tmp_path: Path):
    model = LiteLLMModel(
        "openai/m", api_base=model_server.base_url, api_key=TEST_KEY, timeout=1, max_attempts=2
    )
    agent = ManagedAgent(config=ManagedConfig(model="openai/m"), model=model, store=tmp_path / "s.db")
    assert agent.run("hello").startswith("Noted.")  # litellm is loaded: what follows is the model's time
    model_server.requests.clear()
    model_server.enqueue(*[Reply(text="too late", stall=60)] * 3)

    started = time.monotonic()
    with pytest.raises(ModelError, match=r"did not answer within 1 s \(gave up after 2 attempts\)"):
        agent.run("are you there?")
    elapsed = time.monotonic() - started

    assert len(model_server.requests) == 2
    assert 2 <= elapsed < 4, elapsed  # two one-second waits and a short pause between them
    failed = agent.audit_log()[-1]
    assert failed.type == "TurnFailed" and failed.payload["error_type"] == "ModelError"
    assert "did not answer within 1 s" in failed.payload["error"]


def test_transient_errors_are_retried_within_the_attempt_budget_only(model_server):
    model_server.enqueue(*[Reply(status=503, error="overloaded")] * 10)
    with pytest.raises(ModelError, match=r"HTTP 503.*overloaded \(gave up after 3 attempts\)"):
        call(adapter(model_server, max_attempts=3))
    assert len(model_server.requests) == 3  # not multiplied by litellm's or the SDK's own retries


def test_a_transient_error_then_an_answer_is_one_call(model_server):
    model_server.enqueue(Reply(status=429, error="slow down"), Reply(text="here"))
    replies = list(adapter(model_server, max_attempts=2).stream("system", [UserMessage("hello")], []))
    assert replies[-1].message.content == "here" and len(model_server.requests) == 2


def test_a_refusal_is_not_retried(model_server):
    model_server.enqueue(Reply(status=401, error="invalid api key"), Reply(text="unused"))
    with pytest.raises(ModelSetupError, match="HTTP 401.*invalid api key; check the model's name"):
        call(adapter(model_server, max_attempts=3))
    assert len(model_server.requests) == 1


def test_an_abandoned_stream_gives_its_connection_back_at_once(model_server):
    """A turn interrupted mid-reply stops reading its model stream. The stream's connection
    must go back to the HTTP client's pool then, not when the garbage collector finalizes
    the stream: the collector can run inside the pool's lock, and closing the stream there
    waits on that same lock for ever. With the collector off only the adapter's own close
    frees a connection, so without it the streams past the pool's 100 connections (httpx's
    default) would wait for one until their timeout."""
    model = adapter(model_server, timeout=10, max_attempts=1)
    collecting = gc.isenabled()
    gc.disable()
    try:
        for _ in range(101):
            model_server.enqueue(Reply(text="a reply nobody reads to its end"))
            stream = model.stream("system", [UserMessage("hello")], [])
            assert isinstance(next(stream), TextDelta)
            stream.close()
        model_server.enqueue(Reply(text="still served"))
        replies = list(model.stream("system", [UserMessage("hello")], []))
    finally:
        if collecting:
            gc.enable()
    assert replies[-1].message.content == "still served"


@pytest.mark.parametrize("bounds", [{"timeout": 0}, {"max_attempts": 0}])
def test_bounds_that_allow_no_call_are_refused(bounds):
    with pytest.raises(ValueError, match="timeout > 0 and max_attempts >= 1"):
        LiteLLMModel("openai/m", **bounds)


@pytest.mark.parametrize(("counts", "shown"), [({"prompt_tokens": 2**70}, f"input_tokens={2**70}"),
                                               ({"completion_tokens": -1}, "output_tokens=-1")])  # fmt: skip
def test_a_usage_no_reply_can_have_is_refused(model_server, counts, shown):
    """Usage comes from the model server: counts that would take a session's totals past the
    integers a store keeps are refused, not recorded."""
    model_server.enqueue(Reply(text="hi", **counts), Reply(text="unused"))
    with pytest.raises(ModelError, match=rf"reported a usage no reply can have \({shown}\)"):
        call(adapter(model_server, max_attempts=3))
    assert len(model_server.requests) == 1


def test_a_stream_cut_off_before_any_text_is_retried(model_server):
    """A connection dropped before the stream's end (no finish chunk, no [DONE]): nothing
    reached the caller, so the call is tried again, and only the whole reply comes out."""
    model_server.enqueue(Reply(text="lost on the way", cut=0), Reply(text="whole"))
    items = list(adapter(model_server, max_attempts=2).stream("system", [UserMessage("hello")], []))
    assert "".join(i.text for i in items if isinstance(i, TextDelta)) == "whole"
    assert items[-1].message.content == "whole" and len(model_server.requests) == 2


def test_a_stream_cut_off_on_every_attempt_fails(model_server):
    model_server.enqueue(*[Reply(text="lost", cut=0)] * 3)
    with pytest.raises(ModelError, match=r"stopped mid-reply.*\(gave up after 2 attempts\)"):
        call(adapter(model_server, max_attempts=2))
    assert len(model_server.requests) == 2


def test_a_stream_cut_off_after_text_was_streamed_fails_without_a_retry(model_server):
    """What the caller was shown cannot be taken back: a retry would show it twice."""
    model_server.enqueue(Reply(text="The answer is forty-two", cut=10), Reply(text="unused"))
    streamed: list[str] = []
    with pytest.raises(ModelError, match="stopped mid-reply.*after 10 characters") as failure:
        for item in adapter(model_server, max_attempts=3).stream("system", [UserMessage("hello")], []):
            assert isinstance(item, TextDelta)
            streamed.append(item.text)
    assert "".join(streamed) == "The answer" and len(model_server.requests) == 1
    assert failure.value.retryable


def test_streams_read_to_their_end_give_their_connections_back(model_server):
    """A reply is read up to litellm's chunk of usage, which it makes once the provider's
    stream has ended, and no further: the response under it is closed all the same, with
    the collector off, past the pool's 100 connections."""
    model = adapter(model_server, timeout=10, max_attempts=1)
    collecting = gc.isenabled()
    gc.disable()
    try:
        for number in range(101):
            model_server.enqueue(Reply(text=f"reply {number}", prompt_tokens=7, completion_tokens=3))
            *deltas, reply = model.stream("system", [UserMessage("hello")], [])
            assert reply.message.content == f"reply {number}" == "".join(d.text for d in deltas)
            assert (reply.usage.input_tokens, reply.usage.output_tokens) == (7, 3)
    finally:
        if collecting:
            gc.enable()
    assert len(model_server.requests) == 101


def test_litellm_logs_calls_only_while_something_in_the_process_listens(model_server):
    """The engine logs its calls itself, so litellm's logging of each streamed chunk is off;
    an application that registers a litellm callback (as an embedding one may) still hears
    every call, and once it is gone the logging is off again. (The model's provider is one
    the fast path does not take, so every call here is litellm's.)"""
    model = LiteLLMModel("hosted_vllm/m", api_base=model_server.base_url, api_key=TEST_KEY)
    call(model)  # loads litellm as the engine does (its price table from the package, not the network)
    import litellm
    from litellm.integrations.custom_logger import CustomLogger

    heard: list[str] = []

    class Listener(CustomLogger):
        def log_success_event(self, kwargs, response_obj, start_time, end_time):  # type: ignore[no-untyped-def]
            heard.append(response_obj.choices[0].message.content)

    assert litellm.disable_streaming_logging is True
    listener = Listener()
    litellm.callbacks.append(listener)
    try:
        model_server.enqueue(Reply(text="overheard"))
        call(model)
        assert litellm.disable_streaming_logging is False
        wait_until(lambda: "overheard" in heard, "the listener to hear the call")
    finally:
        for name in ("callbacks", "success_callback", "_async_success_callback",
                     "failure_callback", "_async_failure_callback", "input_callback"):  # fmt: skip
            setattr(litellm, name, [c for c in getattr(litellm, name) if c is not listener])
    call(model)
    assert litellm.disable_streaming_logging is True


# -- set-up errors, retries, connection errors ------------------------------------------------


def test_missing_credentials_are_a_setup_error_never_retried(model_server):
    """litellm reports a missing key as an InternalServerError with HTTP 500, which is
    otherwise worth retrying."""
    model_server.enqueue(*[Reply(status=500, error="Missing credentials. Please pass an `api_key`")] * 3)
    with pytest.raises(
        ModelSetupError, match="Missing credentials.*check the model's name, its provider and its key"
    ):
        call(adapter(model_server, max_attempts=3))
    assert len(model_server.requests) == 1


def test_retries_are_shown_as_they_happen(model_server):
    model_server.enqueue(
        Reply(status=503, error="overloaded"), Reply(status=503, error="overloaded"), Reply(text="ok")
    )
    with pytest.warns(ModelRetryWarning) as shown:
        call(adapter(model_server, max_attempts=3))
    retries = [str(w.message) for w in shown if issubclass(w.category, ModelRetryWarning)]
    assert [text.rsplit("(", 1)[-1] for text in retries] == ["attempt 2 of 3)", "attempt 3 of 3)"]
    assert all("HTTP 503" in text and "trying again in" in text for text in retries)


def test_a_connection_error_names_the_address(unused_port):
    base = f"http://127.0.0.1:{unused_port}/v1"
    with (
        pytest.raises(ModelError, match=f"cannot connect to {re.escape(base)}"),
        pytest.warns(ModelRetryWarning),
    ):
        call(LiteLLMModel("openai/m", api_base=base, api_key=TEST_KEY, retry_delay=0.01, max_attempts=2))


def test_the_setup_check_makes_no_completion_call(model_server, unused_port, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert check_model_setup("openai/m", model_server.base_url, TEST_KEY) == "openai"
    assert model_server.requests == []  # the address was asked for nothing but an answer
    with pytest.raises(ModelSetupError, match="finds no provider for this name"):
        check_model_setup("nosuchprovider/m")
    with pytest.raises(ModelSetupError, match="needs a key: set OPENAI_API_KEY.*--api-key-env$"):
        check_model_setup("gpt-4o")
    with pytest.raises(ModelSetupError, match="needs a key: set OPENAI_API_KEY.*any text"):
        check_model_setup("openai/m", model_server.base_url)
    with pytest.raises(ModelSetupError, match=f"http://127.0.0.1:{unused_port} does not answer"):
        check_model_setup("openai/m", f"http://127.0.0.1:{unused_port}", TEST_KEY)
    with pytest.raises(ModelSetupError, match="not an http:// or https:// URL"):
        check_model_setup("openai/m", "localhost:11434", TEST_KEY)


@pytest.fixture
def unused_port() -> int:
    """A port nothing listens on: bound, then closed (the kernel does not hand it out again at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
