"""The model adapter: any provider litellm speaks (OpenAI, Anthropic, Ollama, vLLM, ...).

Streams a chat completion with usage, assembles tool calls from their deltas,
retries transient failures (only before any text has reached the caller, so
nothing is shown twice), and turns every other failure into a clear
:class:`~application.ports.ModelError`. A stream that ends before the provider
finished it (a dropped connection) is such a transient failure, never a reply.

Each reply carries its price (:func:`price`), from litellm's bundled price table.

Two numbers bound how long a model that does not answer can hold a turn:
``timeout``, the seconds any one read may wait (for the response to begin, or
for its next chunk), and ``max_attempts``, how many requests one call makes in
all. This adapter is the only place that retries: litellm and the provider SDK
under it are told not to, so the attempts never multiply.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

from agentjournal.application.ports import (
    ModelError,
    ModelReply,
    ModelRetryWarning,
    ModelSetupError,
    TextDelta,
    ToolSpec,
)
from agentjournal.domain import AssistantMessage, Message, ToolCall, ToolResult, Usage, UserMessage
from agentjournal.infrastructure.models.direct_openai import (
    DirectCall,
    DirectRoute,
    callbacks_registered,
    direct_call_allowed,
    direct_route,
)

DIRECT_FIELDS = ("messages", "stream_options", "tools")
"""What the fast path sends of a request: all the engine's own request holds but the model,
the stream switch and litellm's settings (timeout, retries), which the fast path sets itself."""

_UNDECIDED = object()
"""A model's fast route before its first call has decided it."""

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})

MAX_TOKEN_COUNT = 2**32
"""The most tokens a reply may report in any one count: far more than any model reads or
writes in a reply, and far fewer than would take a session's totals past the integers a
store keeps (2**63 or 2**64). A server that reports more, or fewer than none, is wrong,
and its reply is refused rather than recorded."""


def _litellm() -> Any:
    """litellm, loaded, with its telemetry off and its debug hints unprinted."""
    # litellm fetches a model cost map from the internet at import unless told not
    # to; a user who wants the live map sets the variable themselves.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    return litellm


def _log_only_for_listeners(litellm: Any) -> None:
    """Switch litellm's logging of each streamed chunk off while nothing in the process
    listens to it, and on again once something does.

    The engine records a call's usage, cost and times in its own log. litellm's streamed
    chunk logging (a task for its thread pool per chunk, each running a new event loop
    for the asynchronous handlers) then only costs CPU, about half of a call's. An
    application embedding the engine (PraisonAI, say) may register litellm callbacks of
    its own; with any registered, litellm logs as it always did. Decided at each call,
    so a callback registered later is heard too."""
    litellm.disable_streaming_logging = not callbacks_registered(litellm)


class LiteLLMModel:
    """A :class:`~application.ports.LanguageModel` backed by litellm.

    A call goes straight through the ``openai`` SDK when litellm would send it there
    unchanged (:mod:`~agentjournal.infrastructure.models.direct_openai`), else through
    ``litellm.completion``; ``direct=False`` sends every call through litellm."""

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        timeout: float = 120.0,
        max_attempts: int = 3,
        retry_delay: float = 0.5,
        extra: dict[str, Any] | None = None,
        direct: bool = True,
    ) -> None:
        if timeout <= 0 or max_attempts < 1:
            raise ValueError(
                f"LiteLLMModel needs timeout > 0 and max_attempts >= 1, not {timeout}, {max_attempts}"
            )
        self.model = model
        self.api_base = api_base
        self._api_key = api_key
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.extra = dict(extra or {})
        self._route: DirectRoute | None | object = _UNDECIDED if direct else None

    def __repr__(self) -> str:
        return f"LiteLLMModel(model={self.model!r}, api_base={self.api_base!r})"

    def stream(
        self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> Iterator[TextDelta | ModelReply]:
        """The call's items. litellm is loaded here, before the first item is asked for,
        so a process's first call is not timed with the seconds its import takes."""
        _litellm()
        return self._stream(system, messages, tools)

    def _stream(
        self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> Iterator[TextDelta | ModelReply]:
        request = {
            "model": self.model,
            "messages": to_openai_messages(system, messages),
            "stream": True,
            "stream_options": {"include_usage": True},
            **self.extra,
            "timeout": self.timeout,
            # Retries happen in ``stream`` alone: litellm's wrapper and the SDK's client make one request.
            "num_retries": 0,
            "max_retries": 0,
        }
        if tools:
            request["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.parameters,
                    },
                }
                for t in tools
            ]
        if self.api_base:
            request["api_base"] = self.api_base
        if self._api_key:
            request["api_key"] = self._api_key

        for attempt in range(1, self.max_attempts + 1):
            streamed = False
            try:
                for item in self._stream_once(request):
                    streamed = streamed or isinstance(item, TextDelta)
                    yield item
                return
            except ModelError as e:
                if not e.retryable or streamed or attempt == self.max_attempts:
                    if attempt == 1:
                        raise
                    raise ModelError(
                        f"{e} (gave up after {attempt} attempts)",
                        retryable=e.retryable,
                        status_code=e.status_code,
                    ) from e
                delay = self.retry_delay * 2 ** (attempt - 1)
                warnings.warn(
                    f"{e}; trying again in {delay:g} s (attempt {attempt + 1} of {self.max_attempts})",
                    ModelRetryWarning,
                    stacklevel=2,
                )
            time.sleep(delay)

    def _stream_once(self, request: dict[str, Any]) -> Iterator[TextDelta | ModelReply]:
        litellm = _litellm()
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        usage = Usage()
        model = self.model
        finish_reason = ""
        call = self._call(litellm, request)
        try:
            for chunk in call:
                model = call.model_of(chunk) or model
                chunk_usage = getattr(chunk, "usage", None)
                if chunk_usage:
                    usage = _usage(chunk_usage)
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                finish_reason = choice.finish_reason or finish_reason
                delta = choice.delta
                if delta.content:
                    text.append(delta.content)
                    yield TextDelta(delta.content)
                for part in delta.tool_calls or ():
                    tool_call = calls.setdefault(part.index or 0, {"id": "", "name": "", "arguments": ""})
                    tool_call["id"] = part.id or tool_call["id"]
                    if part.function is not None:
                        tool_call["name"] += part.function.name or ""
                        tool_call["arguments"] += part.function.arguments or ""
        except Exception as e:
            raise _model_error(e, self.model, self.timeout, self.api_base) from e
        finally:
            # A failure to close must not replace the call's own outcome.
            with contextlib.suppress(Exception):
                call.close()
        if not call.finished:
            raise ModelError(
                f"model {self.model!r} stopped mid-reply: its stream ended before the provider "
                f"finished it (a dropped connection), after {len(''.join(text))} characters of text",
                retryable=True,
            )
        _check_usage(usage, self.model)
        tool_calls = tuple(
            ToolCall(id=c["id"] or f"call_{i}", name=c["name"], arguments=c["arguments"] or "{}")
            for i, c in sorted(calls.items())
        )
        yield ModelReply(
            message=AssistantMessage(content="".join(text), tool_calls=tool_calls, model=model),
            usage=usage,
            model=model,
            finish_reason=finish_reason,
            cost_usd=price(litellm, usage, self.model, model),
        )

    def _call(self, litellm: Any, request: dict[str, Any]) -> DirectCall | LitellmCall:
        """The fast path for this call when it may take it (see
        :mod:`~agentjournal.infrastructure.models.direct_openai`), else litellm's full path."""
        if self._route is _UNDECIDED:  # extra parameters are litellm's to map
            self._route = (
                None if self.extra else direct_route(litellm, self.model, self.api_base, self._api_key)
            )
        route = self._route
        if isinstance(route, DirectRoute) and direct_call_allowed(litellm, route):
            body = {name: request[name] for name in DIRECT_FIELDS if name in request}
            return DirectCall(litellm, route, body, self.timeout)
        return LitellmCall(litellm, request)


class LitellmCall:
    """One streamed call through ``litellm.completion``, its full path: iterate it for
    litellm's chunks, ask :attr:`finished` whether the provider ended the stream, and
    :meth:`close` it, read to its end or not."""

    def __init__(self, litellm: Any, request: dict[str, Any]) -> None:
        self._litellm = litellm
        self._request = request
        self._stream: Any = None

    def __iter__(self) -> Iterator[Any]:
        _log_only_for_listeners(self._litellm)
        self._stream = self._litellm.completion(**self._request)
        for chunk in self._stream:
            yield chunk
            if _usage_was_last(self._stream):  # a chunk of usage alone, after the provider's stream
                return

    @property
    def finished(self) -> bool:
        return _finished_by_provider(self._stream)

    def model_of(self, chunk: Any) -> str | None:
        """The model litellm names on ``chunk``."""
        return getattr(chunk, "model", None)

    def close(self) -> None:
        _release(self._stream)


def warm_up() -> None:
    """Make a process's first model call as quick as its later ones: load litellm, then
    make one streamed call each way through this adapter (its fast path, and litellm's full
    path) to a scripted server of its own on 127.0.0.1 (no provider is reached, and no key
    leaves the process).

    litellm's import takes seconds, and its first call as long again: that call loads the
    provider SDK's resources, the HTTP client's transports and the cost calculator's
    tables; the fast path's first call makes the HTTP client every later one shares (its
    TLS certificates loaded). ``agentjournal serve`` calls this before it says it is
    listening, so the seconds fall before its first turn rather than inside it. The calls
    name a model in litellm's price table, so pricing takes its whole path too (a model
    without a price takes a shorter one), and the path of an OpenAI-compatible provider
    (``openai/...``, ``--model-provider openai``); another provider still loads its own
    translation on its first call."""
    from agentjournal.infrastructure.models.scripted import ScriptedModelServer

    _litellm()
    with ScriptedModelServer() as server:
        for direct in (True, False):
            model = LiteLLMModel(
                "openai/gpt-4o-mini",
                api_base=server.base_url,
                api_key="warm-up",
                max_attempts=1,
                direct=direct,
            )
            for _ in model.stream("", [UserMessage("warm up")], ()):
                pass


def _release(stream: Any) -> None:
    """Close the HTTP response under a litellm stream, whether it was read to its end or
    abandoned (an interrupted turn stops reading mid-reply).

    An abandoned response is otherwise closed only when the garbage collector finalizes
    it, and the collector can run while this thread holds the HTTP client's connection
    pool lock (inside the next request): closing the response takes that same lock, so
    the thread waits on itself for ever (encode/httpcore#990). Until then the response
    also holds one of the pool's connections. Closing is idempotent, so a response read
    to its end is closed again harmlessly; a failure to close must not replace the
    turn's own outcome."""
    close = getattr(getattr(stream, "completion_stream", None), "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()


def _usage(u: Any) -> Usage:
    details = getattr(u, "prompt_tokens_details", None)
    return Usage(
        input_tokens=int(getattr(u, "prompt_tokens", 0) or 0),
        output_tokens=int(getattr(u, "completion_tokens", 0) or 0),
        cache_read_tokens=int(getattr(details, "cached_tokens", 0) or 0),
        cache_creation_tokens=int(getattr(u, "cache_creation_input_tokens", 0) or 0),
    )


def price(litellm: Any, usage: Usage, *models: str) -> float | None:
    """What ``usage`` costs in US dollars by litellm's bundled price table (read from the
    installed package, never fetched: see :func:`_litellm`), under the first of ``models``
    the table knows (the name the call asked for, then the one the provider answered
    with, which may name a dated release). None when it knows none of them: a model
    served locally or new has no price here, and saying so is better than saying 0."""
    for model in dict.fromkeys(m for m in models if m):
        try:
            prompt, completion = litellm.cost_per_token(
                model=model,
                prompt_tokens=usage.input_tokens,
                completion_tokens=usage.output_tokens,
                cache_read_input_tokens=usage.cache_read_tokens,
                cache_creation_input_tokens=usage.cache_creation_tokens,
            )
        except Exception:  # litellm says "not mapped" in several ways, all of them exceptions
            continue
        return float(prompt) + float(completion)
    return None


def _usage_was_last(stream: Any) -> bool:
    """Whether ``stream`` has just handed over the chunk of usage it makes once the
    provider's stream has ended (it holds no text), so nothing is left to read. Asking
    for more would make litellm assemble the whole reply (and price it) a second time
    only to say it is over."""
    return getattr(stream, "sent_stream_usage", False) is True


def _finished_by_provider(stream: Any) -> bool:
    """Whether the provider ended the stream, rather than its connection ending it. litellm
    ends every stream with a chunk that has a finish reason ("stop" when the provider sent
    none), so only the record its stream wrapper keeps of the provider's own finish reason
    tells a reply cut off mid-way from a whole one."""
    received = getattr(stream, "received_finish_reason", None)
    return bool(received or getattr(stream, "intermittent_finish_reason", None))


def _check_usage(usage: Usage, model: str) -> None:
    """Refuse a reply whose usage has a count below 0 or above :data:`MAX_TOKEN_COUNT`."""
    counts = msgspec.structs.asdict(usage)
    wrong = {name: count for name, count in counts.items() if not 0 <= count <= MAX_TOKEN_COUNT}
    if wrong:
        shown = ", ".join(f"{name}={count}" for name, count in wrong.items())
        raise ModelError(
            f"model {model!r} reported a usage no reply can have ({shown}); the reply is not recorded"
        )


SETUP_SIGNS = (
    "Missing credentials",
    "api_key",
    "API key",
    "LLM Provider NOT provided",
    "Unmapped LLM provider",
)
"""What litellm's message says when the model is not set up, whatever error class and
status it comes under (a missing key reaches it as an "InternalServerError, HTTP 500")."""
SETUP_KINDS = frozenset({"AuthenticationError", "PermissionDeniedError", "NotFoundError", "BadRequestError"})


def _model_error(error: Exception, model: str, timeout: float, api_base: str | None = None) -> ModelError:
    """The failure of one request as a :class:`ModelError`: retryable when trying again may
    help; a :class:`ModelSetupError`, never retried, when the setup is wrong; a connection
    error names the address it could not reach."""
    status = getattr(error, "status_code", None)
    kind = type(error).__name__
    if kind == "Timeout":  # litellm's, for the SDK's and httpx's timeouts alike
        return ModelError(f"model {model!r} did not answer within {timeout:g} s", retryable=True)
    detail = str(error).strip() or kind
    said = f"model {model!r} failed ({kind}{f', HTTP {status}' if status else ''}): {detail}"
    if kind in SETUP_KINDS and status in (None, 400, 401, 403, 404) or any(s in detail for s in SETUP_SIGNS):
        return ModelSetupError(
            f"{said}; check the model's name, its provider and its key", status_code=status
        )
    if kind == "APIConnectionError" or "Connection error" in detail:
        where = api_base or "the provider's default address"
        return ModelError(f"model {model!r}: cannot connect to {where} ({detail})", retryable=True)
    retryable = status in RETRYABLE_STATUS or kind in (
        "ServiceUnavailableError",
        "InternalServerError",
        "RateLimitError",
    )
    return ModelError(said, retryable=retryable, status_code=status)


def check_model_setup(model: str, api_base: str | None = None, api_key: str | None = None,
                      timeout: float = 5.0, who: str = "") -> str:  # fmt: skip
    """Check, without a completion call, that a model can be called as set up: litellm
    resolves a provider for its name, a key is at hand where that provider needs one (given,
    or in the provider's environment variable), and an ``api_base`` answers HTTP at all
    (any status will do: a server that answers 404 at its root still serves its API).
    The provider's client wants its key even for a server of its kind at an ``api_base``
    that takes none (OpenAI's does): any text will do then, and saying so beats a turn that
    fails with "Missing credentials". ``who`` names what is checked in the messages
    (default: the model). Returns the provider's name; raises :class:`ModelSetupError`
    saying what to fix."""
    who = who or f"model {model!r}"
    litellm = _litellm()
    try:
        _, provider, _, _ = litellm.get_llm_provider(model=model, api_base=api_base)
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelSetupError(
            f"{who}: litellm finds no provider for this name ({first}); name it as "
            f"provider/model, e.g. openai/{model} for any OpenAI-compatible server"
        ) from None
    if not api_key:
        found = litellm.validate_environment(model=model, api_base=api_base)
        if not found.get("keys_in_environment", True):
            missing = ", ".join(found.get("missing_keys") or ()) or "its API key"
            local = " (for a server that takes no key, any text)" if api_base else ""
            raise ModelSetupError(
                f"{who} (provider {provider}) needs a key: set {missing}, or name the "
                f"variable that holds it with --api-key-env{local}"
            )
    if api_base:
        check_answers(who, api_base, timeout)
    return str(provider)


def check_answers(who: str, api_base: str, timeout: float = 5.0) -> None:
    """Raise :class:`ModelSetupError` unless ``api_base`` answers HTTP (any status);
    ``who`` names what is served there, for the message."""
    import httpx

    try:
        httpx.get(api_base, timeout=timeout)
    except httpx.InvalidURL as e:
        raise ModelSetupError(f"{who}: --api-base {api_base!r} is not a URL ({e})") from None
    except httpx.UnsupportedProtocol:
        raise ModelSetupError(f"{who}: --api-base {api_base!r} is not an http:// or https:// URL") from None
    except httpx.HTTPError as e:
        raise ModelSetupError(
            f"{who}: {api_base} does not answer ({type(e).__name__}: {e or 'no response'})"
        ) from None


def to_openai_messages(system: str, messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The conversation in the chat-completions shape that litellm translates for every provider."""
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for m in messages:
        if isinstance(m, UserMessage):
            out.append({"role": "user", "content": m.content})
        elif isinstance(m, AssistantMessage):
            # No field is None: litellm drops such fields before any provider sees them.
            item: dict[str, Any] = {"role": "assistant", **({"content": m.content} if m.content else {})}
            if m.tool_calls:
                item["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": _valid_json(c.arguments)},
                    }
                    for c in m.tool_calls
                ]
            out.append(item)
        elif isinstance(m, ToolResult):
            out.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.output})
    return out


def _valid_json(arguments: str) -> str:
    """Providers reject a history holding malformed tool arguments; keep such text as a string."""
    try:
        json.loads(arguments)
    except ValueError:
        return json.dumps({"_unparsed": arguments})
    return arguments
