"""Redaction: known secret values and credential-shaped text never reach the log,
while ordinary text passes through untouched."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentjournal.application import redaction
from agentjournal.application.redaction import Redactor

# Built from pieces so no scanner mistakes this file for a leak.
HF = "hf_" + "aBcDeFgHiJkLmNoPqRsTuVwXyZ01234567"
STRIPE_LIVE = "sk_live_" + "51H8xYzAbCdEfGhIjKlMnOpQr"
STRIPE_RESTRICTED = "rk_live_" + "51H8xYzAbCdEfGhIjKlMnOpQr"
STRIPE_TEST = "sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc"
GITLAB = "glpat-" + "xYz12AbC3dEf45GhIjKl"
NPM = "npm_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
OLDER_SHAPES = [
    ("sk-ant-" + "api03-abcdefghijklmnopqrstuvwxyz", "anthropic-key"),
    ("sk-proj-" + "abcdefghijklmnopqrstuvwxyz", "openai-key"),
    ("AKIA" + "IOSFODNN7EXAMPLE", "aws-access-key"),
    ("ghp_" + "a" * 36, "github-token"),
    ("xoxb-" + "1234567890-abcdef", "slack-token"),
    ("AIza" + "SyA1234567890abcdefghijklmnopqrstuv", "google-api-key"),
]
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


@pytest.mark.parametrize(
    ("secret", "kind"),
    [
        (HF, "huggingface-token"),
        (STRIPE_LIVE, "stripe-key"),
        (STRIPE_RESTRICTED, "stripe-key"),
        (STRIPE_TEST, "stripe-key"),
        (GITLAB, "gitlab-token"),
        (NPM, "npm-token"),
        (JWT, "jwt"),
        *OLDER_SHAPES,
    ],
)
def test_credential_shapes_are_redacted_by_kind(secret, kind):
    redact = Redactor()
    assert redact(f"export TOKEN={secret}\nnext line") == f"export TOKEN=[redacted:{kind}]\nnext line"
    assert redact(f'{{"auth": "{secret}"}}') == f'{{"auth": "[redacted:{kind}]"}}'


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("postgres://admin:hunter2hunter2@db.internal:5432/app", "postgres://admin:{}@db.internal:5432/app"),
        ("https://user:p%40ss:word@example.com/repo.git", "https://user:{}@example.com/repo.git"),
        ("redis://:only-a-password@cache:6379/0", "redis://:{}@cache:6379/0"),
    ],
)
def test_the_password_of_a_url_is_redacted_and_the_rest_kept(url, kept):
    assert (
        Redactor()(f"connecting to {url} now")
        == f"connecting to {kept.format('[redacted:url-password]')} now"
    )


@pytest.mark.parametrize(
    "text",
    [
        "https://example.com/a@b",
        "see https://example.com:8443/path@v2 and ssh://git@github.com/org/repo.git",
        "mail jane.doe@example.com or user:name@example.com",
        "rm -rf node_modules npm_modules; echo $npm_config_cache $npm_lifecycle_event",
        "hf_hub_download(repo_id='gpt2'), sk_live_mode = False, glpat-short",
        "eyJ alone, eyJhbGciOiJIUzI1NiJ9 with no dots, and a.b.c",
        "http://user:@host/ has an empty password",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert Redactor()(text) == text


def test_multi_line_private_keys_and_bearer_headers_in_any_case_are_redacted():
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAKCAQ\n-----END RSA PRIVATE KEY-----"
    header = "AUTHORIZATION: BEARER abcdefghijklmnop1234"
    assert Redactor()(f"{key}\n{header}\n") == (
        "[redacted:private-key]\nAUTHORIZATION: BEARER [redacted:bearer-token]\n"
    )


def test_known_values_are_replaced_longest_first_and_shapes_still_apply():
    redact = Redactor({"env:A": "abcd1234", "env:AB": "abcd1234efgh", "env:SHORT": "abc"})
    text = f"abcd1234efgh abcd1234 abc {GITLAB}"
    assert redact(text) == "[redacted:env:AB] [redacted:env:A] abc [redacted:gitlab-token]"


def test_a_redactor_applies_to_any_recorded_text_such_as_a_system_prompt():
    redact = Redactor({"api_key": "sk-test-0123456789abcdefghijklmnop"})
    system = "You deploy with sk-test-0123456789abcdefghijklmnop and " + NPM
    assert redact(system) == "You deploy with [redacted:api_key] and [redacted:npm-token]"


def test_secret_looking_process_variables_are_collected():
    environ = {
        "CIPHER_KEY": "k" * 44,
        "POSTGRES_PASSWORD": "pg12",
        "PGPASSWORD": "another-password",
        "OPENAI_API_KEY": "sk-something-long-enough",
        "GITHUB_TOKEN": "gho_" + "x" * 36,
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG",
        "SENTRY_DSN": "https://abc@o1.ingest.sentry.io/1",
        "DOCKER_AUTH_CONFIG": '{"auths": {}}',
        "MY_CREDENTIALS": "user:pass-phrase",
        "AGENTJOURNAL_API_KEYS": "first-key-0001, second-key-0002,tiny",  # each item too
        "SOME_FEATURE_TOKEN_ENABLED": "true",  # too short to redact safely
        "GIT_AUTHOR_NAME": "Jane Doe Developer",  # AUTHOR is not AUTH
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/home/jane",
        "PWD": "/home/jane/project",
    }
    assert redaction.process_secrets(environ) == {
        "process-env:CIPHER_KEY": "k" * 44,
        "process-env:POSTGRES_PASSWORD": "pg12",
        "process-env:PGPASSWORD": "another-password",
        "process-env:OPENAI_API_KEY": "sk-something-long-enough",
        "process-env:GITHUB_TOKEN": "gho_" + "x" * 36,
        "process-env:AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG",
        "process-env:SENTRY_DSN": "https://abc@o1.ingest.sentry.io/1",
        "process-env:DOCKER_AUTH_CONFIG": '{"auths": {}}',
        "process-env:MY_CREDENTIALS": "user:pass-phrase",
        "process-env:AGENTJOURNAL_API_KEYS": "first-key-0001, second-key-0002,tiny",
        "process-env:AGENTJOURNAL_API_KEYS[0]": "first-key-0001",
        "process-env:AGENTJOURNAL_API_KEYS[1]": "second-key-0002",
    }


def test_the_process_environment_is_read_by_default(monkeypatch):
    monkeypatch.setenv("CIPHER_KEY", "c2VjcmV0LWNpcGhlci1rZXktZm9yLXRlc3Q=")
    redact = Redactor(redaction.process_secrets())
    assert redact("key=c2VjcmV0LWNpcGhlci1rZXktZm9yLXRlc3Q=") == "key=[redacted:process-env:CIPHER_KEY]"


# -- the cues that let most text skip the scan ------------------------------------------------


def test_every_shape_has_cues():
    assert set(redaction.CUES) == set(redaction.PATTERNS)
    assert all(redaction.CUES.values())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(),
        *(st.from_regex(pattern) for pattern in redaction.PATTERNS.values()),
        *(st.from_regex(pattern).map(str.swapcase) for pattern in redaction.PATTERNS.values()),
    )
)
def test_text_without_cues_is_text_the_scan_would_leave_alone(text):
    """Skipping the scan never changes what is recorded: text holding a shape (generated
    from its expression, inside other text) is redacted exactly as the scan alone does."""
    assert Redactor()(text) == redaction._SHAPES.sub(redaction._mark_shape, text)
