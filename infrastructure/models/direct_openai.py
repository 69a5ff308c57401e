"""The model call's fast path: a chat completion streamed straight through the ``openai``
SDK, for a provider and model litellm would send there unchanged.

litellm is how a model name reaches any provider, and it stays so: it names the provider,
its address and its key (``get_llm_provider``), decides whether this path may be taken at
all, maps its failures (``exception_type``) and prices its replies. But for a provider that
speaks OpenAI's chat completions, litellm's own path ends in the same SDK call this module
makes, after work the engine does not use (parameter mapping, its logging object, a stream
wrapper that rebuilds every chunk, the reply assembled and priced again at the end): about
three quarters of a call's CPU over the provider's own round trip.

The path is taken only where it sends what litellm would send (:func:`direct_route`):

* the provider is one of :data:`DIRECT_PROVIDERS`, those whose chat requests litellm
  hands to the SDK untranslated (its plain OpenAI-compatible handler, with a request
  config that neither rewrites the messages nor maps the parameters the engine sends);
* the model is none litellm translates for: not OpenAI's reasoning models (the o-series
  and gpt-5, whose token limits, roles and parameters litellm rewrites), not an audio
  model, nothing litellm's model information marks as reasoning, as served by another API
  than chat completions, or as streamed by litellm itself;
* the call holds nothing but messages, tools and stream options (no extra parameters),
  an address and a key are known, and nothing in the process changed how litellm calls
  OpenAI (:func:`_settings_litellm_applies`) or asked to hear its calls (callbacks).

Anything else takes litellm's full path, as before.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import msgspec

DIRECT_PROVIDERS = frozenset({"openai", "custom_openai", "llamafile", "lm_studio"})
"""Providers litellm sends through its plain OpenAI-compatible handler
(``_complete_custom_openai``, the SDK's ``chat.completions.create``) with a request
config that passes the engine's messages, tools and stream options through as they are
(``tests/test_direct_openai.py`` holds each to litellm's own request). Others that take
that handler rewrite messages (``deepinfra``, ``sambanova``, the JSON-configured ones),
map parameters (``nvidia_nim``, ``cerebras``, ``groq``), add headers or take another
handler (``hosted_vllm``, ``azure``): litellm's full path serves them."""

_KEY_VARIABLE = {"openai": "OPENAI_API_KEY", "custom_openai": "OPENAI_API_KEY"}
"""Where litellm's OpenAI handler looks for a key no one passed, by provider (the others
get a key from ``get_llm_provider``, a placeholder for local servers)."""


class DirectRoute(msgspec.Struct, frozen=True):
    """Where a direct call goes: the provider, the model as the provider names it, its
    base address and the key named for it (None: the provider's environment variable)."""

    provider: str
    model: str
    api_base: str
    api_key: str | None

    def __repr__(self) -> str:
        """The route without its key, which must reach no log."""
        return f"DirectRoute(provider={self.provider!r}, model={self.model!r}, api_base={self.api_base!r})"

    def key(self) -> str | None:
        """The key this call sends: the one named, else the provider's variable, read at
        each call as litellm reads it."""
        variable = _KEY_VARIABLE.get(self.provider)
        return self.api_key or (os.environ.get(variable) if variable else None)


def direct_route(litellm: Any, model: str, api_base: str | None, api_key: str | None) -> DirectRoute | None:
    """The route of a fast call for ``model``, or None when litellm must make the call
    (see the module's list). What is decided here depends on the model and its set-up
    alone, so a caller may keep it; what may change from call to call is
    :func:`direct_call_allowed`'s."""
    try:
        name, provider, dynamic_key, base = litellm.get_llm_provider(model=model, api_base=api_base)
    except Exception:  # litellm's full path says what is wrong with the name
        return None
    base = api_base or base
    if provider not in DIRECT_PROVIDERS or not base or name.startswith("responses/"):
        return None
    if _translated_for(litellm, name, provider):
        return None
    return DirectRoute(provider=provider, model=name, api_base=base, api_key=api_key or dynamic_key)


def _translated_for(litellm: Any, model: str, provider: str) -> bool:
    """Whether litellm rewrites a chat request for ``model``: OpenAI's reasoning and audio
    models by name (whatever the provider: a proxy may serve them under their names), and
    any model its model information knows as reasoning, as not a chat model, or as one
    whose stream litellm makes itself."""
    if (
        litellm.openaiOSeriesConfig.is_model_o_series_model(model)
        or litellm.OpenAIGPT5Config.is_model_gpt_5_model(model)
        or litellm.openAIGPTAudioConfig.is_model_gpt_audio_model(model)
    ):
        return True
    try:
        info = litellm.get_model_info(model=model, custom_llm_provider=provider)
    except Exception:  # a model litellm has no information on: nothing to translate for
        return False
    return bool(
        info.get("supports_reasoning")
        or info.get("mode") not in (None, "chat")
        or info.get("supports_native_streaming") is False
    )


def direct_call_allowed(litellm: Any, route: DirectRoute) -> bool:
    """Whether a call on ``route`` may go direct now: a key is at hand (without one,
    litellm's path says so in its own words), nothing in the process listens to litellm's
    calls, and nothing changed how litellm calls OpenAI."""
    return bool(route.key()) and not callbacks_registered(litellm) and not _settings_litellm_applies(litellm)


def callbacks_registered(litellm: Any) -> bool:
    """Whether anything in this process asked litellm to report its calls."""
    lists = ("callbacks", "success_callback", "failure_callback", "_async_success_callback",
             "_async_failure_callback", "input_callback", "service_callback")  # fmt: skip
    return any(getattr(litellm, name, None) for name in lists)


def _settings_litellm_applies(litellm: Any) -> bool:
    """Whether a process-wide litellm setting would change an OpenAI call: a key, headers
    or an organisation set for every call, a config of OpenAI parameters, a client, TLS
    verification other than the default, a secret manager where keys are looked up, the
    routing of chat to OpenAI's responses API, litellm's rewriting of messages
    (``modify_params``), or its other HTTP handler."""
    return bool(
        litellm.api_key
        or litellm.openai_key
        or litellm.headers
        or litellm.organization
        or os.environ.get("OPENAI_ORGANIZATION")
        or litellm.OpenAIConfig.get_config()
        or litellm.client_session is not None
        or litellm.ssl_verify is not True
        or litellm.secret_manager_client is not None
        or litellm.route_all_chat_openai_to_responses
        or litellm.modify_params
        or os.environ.get("EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER")
    )


_clients: dict[tuple[str, str, float], Any] = {}
"""The clients made so far: one per base, key and timeout a model is set up with."""
_http_client: Any = None
_clients_lock = threading.Lock()


def _client(base: str, key: str, timeout: float) -> Any:
    """The one ``openai.OpenAI`` client for a base, key and timeout, made on first use. It
    retries nothing: the adapter alone retries.

    All of them send through one HTTP client (the SDK's default one: its connection
    limits, redirects and proxies from the environment), made by the process's first
    direct call, which ``warm_up`` makes: an HTTP client loads its TLS certificates when
    made, 60 to 110 ms here, which would otherwise fall in the first call of each model.
    One pool serves every base (connections are kept per origin), and the key and timeout
    are the ``openai.OpenAI`` client's, sent with each request."""
    global _http_client
    with _clients_lock:
        client = _clients.get((base, key, timeout))
        if client is None:
            import openai

            _http_client = _http_client or openai.DefaultHttpxClient()
            client = openai.OpenAI(
                base_url=base, api_key=key, timeout=timeout, max_retries=0, http_client=_http_client
            )
            _clients[(base, key, timeout)] = client
        return client


class DirectCall:
    """One streamed chat completion on a :class:`DirectRoute`: iterate it for the SDK's
    chunks, then ask :attr:`finished` whether the provider ended the stream (a chunk with a
    finish reason came) rather than its connection; :meth:`close` closes the response,
    read to its end or not. Failures come out as litellm's exceptions, mapped as litellm's
    OpenAI path maps them."""

    def __init__(self, litellm: Any, route: DirectRoute, body: dict[str, Any], timeout: float) -> None:
        self._litellm = litellm
        self._route = route
        self._body = body
        self._timeout = timeout
        self._stream: Any = None
        self.finished = False

    def __iter__(self) -> Iterator[Any]:
        route = self._route
        client = _client(route.api_base, route.key() or "", self._timeout)
        try:
            self._stream = client.chat.completions.create(
                **self._body, model=route.model, stream=True, timeout=self._timeout
            )
        except Exception as e:
            raise self._mapped(_as_openai_error(e)) from e
        begun = False
        try:
            for chunk in self._stream:
                if chunk.choices and chunk.choices[0].finish_reason:
                    self.finished = True
                begun = True
                yield chunk
        except Exception as e:
            raise self._mid_stream(e, begun) from e

    def model_of(self, chunk: Any) -> str:
        """The model a chunk is recorded under, named as litellm's stream names it: the
        model asked for (not the one the server says it is), behind its provider's name
        unless that is ``openai``."""
        del chunk
        route = self._route
        return route.model if route.provider == "openai" else f"{route.provider}/{route.model}"

    def close(self) -> None:
        """Close the response under the stream (idempotent; nothing before it opened)."""
        if self._stream is not None:
            self._stream.close()

    def _mapped(self, error: Exception) -> Exception:
        """``error`` as litellm's exception of its kind, which ``exception_type`` raises."""
        try:
            self._litellm.exception_type(
                model=self._route.model,
                original_exception=error,
                custom_llm_provider=self._route.provider,
                completion_kwargs={},
                extra_kwargs={},
            )
        except Exception as mapped:
            return mapped
        return error  # exception_type raises every error it is given

    def _mid_stream(self, error: Exception, begun: bool) -> Exception:
        """A failure after the response began (``begun``: after its first chunk), as
        litellm's stream wrapper reports it: a client error (4xx, but 429) as its mapped
        kind, anything else as a mid-stream failure carrying the mapped one
        (``MidStreamFallbackError``)."""
        mapped = self._mapped(error)
        statuses = (getattr(mapped, "status_code", None), getattr(error, "status_code", None))
        if any(isinstance(s, int) and 400 <= s < 500 and s != 429 for s in statuses):
            return mapped
        from litellm.exceptions import MidStreamFallbackError

        return MidStreamFallbackError(
            message=str(mapped), model=self._route.model, llm_provider=self._route.provider,
            original_exception=mapped, is_pre_first_chunk=not begun,
        )  # fmt: skip


def _as_openai_error(error: Exception) -> Exception:
    """The SDK's failure to start a response wrapped as litellm's OpenAI handler wraps it
    (``OpenAIError`` with the status, 500 when there is none, the body's text and the
    response's headers), so ``exception_type`` sees what it sees on litellm's path."""
    from litellm.llms.openai.common_utils import OpenAIError

    response = getattr(error, "response", None)
    headers = getattr(error, "headers", None) or (getattr(response, "headers", None) if response else None)
    return OpenAIError(
        status_code=getattr(error, "status_code", 500),
        message=getattr(error, "text", str(error)),
        headers=headers,
        body=getattr(error, "body", None),
    )
