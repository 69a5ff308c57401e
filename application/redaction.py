"""Keep secrets out of the log.

Everything a session records (prompts, model replies, tool arguments and
output) passes through a :class:`Redactor` first. It replaces the values it was
given by name (the API key, each ``env`` value) with ``[redacted:NAME]``, and
text that looks like a well-known kind of credential with ``[redacted:KIND]``.
The tool itself still runs with the real values; only the record is redacted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Values shorter than this are too likely to occur by chance ("1", "yes") to redact.
MIN_SECRET_LENGTH = 4

PATTERNS: dict[str, re.Pattern[str]] = {
    "private-key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
    "anthropic-key": re.compile(r"\bsk-ant-[A-Za-z0-9_\-]{20,}"),
    "openai-key": re.compile(r"\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_\-]{20,}"),
    "aws-access-key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "github-token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})"),
    "slack-token": re.compile(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"),
    "google-api-key": re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    "bearer-token": re.compile(r"(?i)(?<=authorization: bearer )[A-Za-z0-9._\-]{16,}"),
}


class Redactor:
    """Replaces known secret values and credential-shaped text."""

    def __init__(self, secrets: Mapping[str, str] | None = None) -> None:
        named = {
            value: name
            for name, value in (secrets or {}).items()
            if value and len(value) >= MIN_SECRET_LENGTH
        }
        # Longest first, so a secret that contains another is replaced whole.
        self._values = sorted(named.items(), key=lambda item: -len(item[0]))

    def __call__(self, text: str) -> str:
        for value, name in self._values:
            if value in text:
                text = text.replace(value, f"[redacted:{name}]")
        for kind, pattern in PATTERNS.items():
            text = pattern.sub(f"[redacted:{kind}]", text)
        return text
