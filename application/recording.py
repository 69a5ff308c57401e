"""What is recorded of what the model and the client send: redacted and capped.

Everything that reaches the log passes through a :class:`Redactor` (the caller's secrets,
credential-shaped text), and a tool call's arguments are capped at the session's
``max_output_bytes``, so neither a secret nor an unbounded payload is recorded. The tools
still run with what the model sent; only the record is redacted and capped.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from agentjournal.application.redaction import Redactor, process_secrets
from agentjournal.domain import (
    AssistantMessage,
    SessionConfig,
    ToolCall,
)


def given_or_default(given: Redactor | None) -> Redactor:
    """The caller's redactor, or one that knows at least this process's secrets."""
    return given or Redactor(process_secrets())


def recordable(message: AssistantMessage, redact: Redactor, max_argument_bytes: int) -> AssistantMessage:
    """A model's message as the log keeps it: redacted, each call with an id of its own
    (models do repeat or omit them) and without whitespace (a pause records the ids it
    waits on separated by spaces), and arguments over ``max_argument_bytes`` replaced
    by a JSON object saying how large they were (the tool still gets them whole)."""
    seen: set[str] = set()
    calls = []
    for number, call in enumerate(message.tool_calls, start=1):
        given = "_".join(redact(call.id).split())
        call_id, again = given or f"call_{number}", 1
        while call_id in seen:
            again += 1
            call_id = f"{given or f'call_{number}'}_{again}"
        seen.add(call_id)
        arguments = _capped_arguments(_redact_arguments(call.arguments, redact), max_argument_bytes)
        calls.append(ToolCall(call_id, redact(call.name), arguments))
    return msgspec.structs.replace(message, content=redact(message.content), tool_calls=tuple(calls))


def recordable_config(config: SessionConfig, redact: Redactor) -> SessionConfig:
    """A config as the log keeps it: its texts (system prompt, name, metadata, custom tool
    descriptions) redacted like everything else recorded."""
    return msgspec.structs.replace(
        config,
        system=redact(config.system),
        name=redact(config.name),
        metadata=redact_json(config.metadata, redact),
        custom_tools=tuple(
            msgspec.structs.replace(t, description=redact(t.description)) for t in config.custom_tools
        ),
    )


def _redact_arguments(arguments: str, redact: Redactor) -> str:
    """A call's arguments redacted value by value when they are JSON, so a credential shape
    can never swallow the structure around it (a key, the next field): the record keeps
    every field the tool was given. Unchanged arguments keep their exact text."""
    try:
        decoded = msgspec.json.decode(arguments)
    except msgspec.DecodeError:
        return redact(arguments)
    redacted = redact_json(decoded, redact)
    return arguments if redacted == decoded else msgspec.json.encode(redacted).decode()


def redact_json(value: Any, redact: Redactor) -> Any:
    """Every string in a JSON value redacted, keys included; the structure is kept."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): redact_json(v, redact) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_json(v, redact) for v in value]
    return value


def _capped_arguments(arguments: str, limit: int) -> str:
    data = arguments.encode()
    if len(data) <= limit:
        return arguments
    return msgspec.json.encode(
        {"truncated_arguments": {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                 "head": data[: min(limit, 1_000)].decode("utf-8", "replace")}}
    ).decode()  # fmt: skip
