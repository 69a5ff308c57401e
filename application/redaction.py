"""Keep secrets out of the log.

Everything a session records (prompts, model replies, tool arguments and
output) passes through a :class:`Redactor` first. It replaces the values it was
given by name (the API key, each ``env`` value, and with :func:`process_secrets`
the secret-looking variables of this process) with ``[redacted:NAME]``, and
text that looks like a well-known kind of credential with ``[redacted:KIND]``.
A URL's password is replaced alone, so ``postgres://app:[redacted:url-password]@db/x``
still says where it pointed. The tool itself still runs with the real values;
only the record is redacted.

Known values are replaced first, longest first (plain substring search); then
all credential shapes are found in one scan of one regular expression, where at
each position the first kind listed in :data:`PATTERNS` wins. That scan is made
only when the text holds one of the :data:`CUES` (literal text every match of a
shape contains): most text holds none, and a few substring searches cost a tenth
of the scan.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

# Values shorter than this are too likely to occur by chance ("1", "yes") to redact.
MIN_SECRET_LENGTH = 4

# A variable guessed secret by its name must have a longer value: "SOME_AUTH_ENABLED=true"
# must not redact every "true" in the log.
MIN_GUESSED_SECRET_LENGTH = 8

# Variables this engine itself reads as secrets (the store's password, the log's cipher key).
KNOWN_SECRET_VARIABLES = frozenset({"CIPHER_KEY", "POSTGRES_PASSWORD", "PGPASSWORD"})

# Names that say "secret": API_KEY, CLIENT_SECRET, GITHUB_TOKEN, PGPASSWORD, SENTRY_DSN,
# GOOGLE_APPLICATION_CREDENTIALS, ... but not GIT_AUTHOR_NAME.
SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSW(?:OR)?D|PASSPHRASE|CREDENTIAL|CIPHER|AUTH(?!OR)|DSN", re.I)

# A variable holding several secrets, comma-separated (AGENTJOURNAL_API_KEYS holds the
# server's keys so): each is a secret on its own, wherever it appears without the others.
SECRET_LIST = re.compile(r"[^\s,]+(?:\s*,\s*[^\s,]+)+")

# Credential shapes, by kind. A shape with a ``keep`` group (what leads to the secret: a
# URL's scheme and user, an HTTP header's name) has that part written back before the mark.
PATTERNS: dict[str, str] = {
    # The body is base64 with optional "Name: value" header lines, so the marks cannot hide
    # arbitrary text between them.
    "private-key": (
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:\s*[A-Za-z-]+: [^\n]*)*[A-Za-z0-9+/=\s]*"
        r"-----END [A-Z ]*PRIVATE KEY-----"
    ),
    "anthropic-key": r"\bsk-ant-[A-Za-z0-9_\-]{20,}",
    "openai-key": r"\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_\-]{20,}",
    "stripe-key": r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}",
    "aws-access-key": r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    "github-token": r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})",
    "gitlab-token": r"\bglpat-[A-Za-z0-9_\-]{20,}",
    "huggingface-token": r"\bhf_[A-Za-z0-9]{30,}\b",
    "npm-token": r"\bnpm_[A-Za-z0-9]{36}\b",
    "slack-token": r"\bxox[abprs]-[A-Za-z0-9\-]{10,}",
    "google-api-key": r"\bAIza[0-9A-Za-z_\-]{35}\b",
    "jwt": r"\beyJ[A-Za-z0-9_\-]{10,}\.eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]*",
    "bearer-token": r"(?P<keep>(?i:authorization: bearer ))[A-Za-z0-9._\-]{16,}",
    "url-password": r"(?<=[A-Za-z0-9+.\-])(?P<keep>://[^\s/:@]*:)[^\s/@]+(?=@)",
}

# Where a shape can begin: a word starting with one of these letters, or one of the other
# characters (a key's dashes, a URL's colon, a header in any case and place). Checking
# this first lets the scan skip most positions at once; a new shape must fit it.
SHAPE_STARTS = r"[-:Aa]|\b[eghnrsx]"


CUES: dict[str, tuple[str, ...]] = {
    "private-key": ("-----BEGIN ",),
    "anthropic-key": ("sk-ant-",),
    "openai-key": ("sk-",),
    "stripe-key": ("k_live_", "k_test_"),
    "aws-access-key": ("AKIA", "ASIA"),
    "github-token": ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    "gitlab-token": ("glpat-",),
    "huggingface-token": ("hf_",),
    "npm-token": ("npm_",),
    "slack-token": ("xoxa-", "xoxb-", "xoxp-", "xoxr-", "xoxs-"),
    "google-api-key": ("AIza",),
    "jwt": ("eyJ",),
    # Case-insensitive: ": " is the only part no other case (or Unicode case fold) changes.
    "bearer-token": (": ",),
    "url-password": ("://",),
}
"""Literal text that every match of a kind of :data:`PATTERNS` contains, case included.
Text without any of them cannot hold a credential shape. A new shape needs its cues."""


def process_secrets(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The secret-looking variables of ``environ`` (this process's environment by
    default), named ``process-env:NAME`` for a :class:`Redactor`.

    A command may print them (``env``), a model may be tricked into echoing them: the
    log must not keep them either way. The engine's own secrets (``CIPHER_KEY``,
    ``POSTGRES_PASSWORD``) are always taken; other variables when their name says
    secret and their value is long enough not to be an ordinary word. A value that is
    a comma-separated list of secrets gives each of its items too.
    """
    environ = os.environ if environ is None else environ
    found = {}
    for name, value in environ.items():
        known = name.upper() in KNOWN_SECRET_VARIABLES
        minimum = MIN_SECRET_LENGTH if known else MIN_GUESSED_SECRET_LENGTH
        if (known or SECRET_NAME.search(name)) and len(value) >= minimum:
            found[f"process-env:{name}"] = value
            if SECRET_LIST.fullmatch(value):
                for number, item in enumerate(value.split(",")):
                    if len(item.strip()) >= minimum:
                        found[f"process-env:{name}[{number}]"] = item.strip()
    return found


class Redactor:
    """Replaces known secret values and credential-shaped text.

    ``secrets`` maps a name to a value; the value is replaced by ``[redacted:NAME]``.
    Build it with ``config.secrets() | process_secrets()`` to cover the process's own
    secrets too. A redactor is a plain function of text: apply it to anything before
    it is recorded (prompts, system prompts, titles, tool output).
    """

    def __init__(self, secrets: Mapping[str, str] | None = None) -> None:
        named = {
            value: name
            for name, value in (secrets or {}).items()
            if value and len(value) >= MIN_SECRET_LENGTH
        }
        # Longest first, so a secret that contains another is replaced whole.
        self._values = sorted(named.items(), key=lambda item: -len(item[0]))

    def learn(self, name: str, value: str) -> None:
        """Know one more secret from now on (a token refreshed while a turn runs)."""
        if value and len(value) >= MIN_SECRET_LENGTH:
            self._values = sorted([*self._values, (value, name)], key=lambda item: -len(item[0]))

    def __call__(self, text: str) -> str:
        for value, name in self._values:
            if value in text:
                text = text.replace(value, f"[redacted:{name}]")
        return _SHAPES.sub(_mark_shape, text) if _may_hold_shape(text) else text


def _compile_shapes() -> re.Pattern[str]:
    """All of :data:`PATTERNS` as one alternation: group ``sN`` is the N-th kind, ``kN``
    its ``keep`` part."""
    alternatives = [
        f"(?P<s{i}>{pattern.replace('(?P<keep>', f'(?P<k{i}>')})"
        for i, pattern in enumerate(PATTERNS.values())
    ]
    return re.compile(f"(?={SHAPE_STARTS})(?:{'|'.join(alternatives)})")


_SHAPES = _compile_shapes()
_KINDS = list(PATTERNS)
_CUE = re.compile(
    "|".join(sorted({re.escape(c) for k, cues in CUES.items() if k != "bearer-token" for c in cues}))
)
_BEARER = re.compile(PATTERNS["bearer-token"])


def _may_hold_shape(text: str) -> bool:
    """Whether ``text`` holds a cue of some shape: one scan for all the literal cues (a
    scan for literals is quick), and for the bearer shape, whose cue ": " is common (JSON,
    logs, prose), its own expression, when ": " is there."""
    return _CUE.search(text) is not None or (": " in text and _BEARER.search(text) is not None)


def _mark_shape(match: re.Match[str]) -> str:
    index = int(match.lastgroup[1:])  # type: ignore[index]
    kept = match.group(f"k{index}") if f"k{index}" in match.re.groupindex else ""
    return f"{kept}[redacted:{_KINDS[index]}]"
