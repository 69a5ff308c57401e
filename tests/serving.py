"""A real ``agentjournal serve`` process for tests: uvicorn on a real socket, a store of
the test's own, models from the scripted model server through litellm."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.forking import PRELOADED, ForkedServer

API_KEY = "aj-test-key-0123456789"

WEATHER = {
    "type": "custom",
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
"""A custom tool, as the API takes one: the client runs it and answers."""

MODEL_KEY_ENV = "AGENTJOURNAL_TEST_MODEL_KEY"


@dataclass
class RunningServer:
    url: str
    process: ForkedServer

    def client(self, key: str = API_KEY, **options: object):  # type: ignore[no-untyped-def]
        """The official SDK, pointed at this server."""
        import anthropic

        return anthropic.Anthropic(api_key=key, base_url=self.url, max_retries=0, **options)  # type: ignore[arg-type]

    def kill(self) -> None:
        """As a crash does: no shutdown, no cleanup."""
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """As its user stops it (SIGTERM), and wait: the server lets the turns it runs end first."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


@contextmanager
def running_server(
    model_url: str,
    store: str | Path | None = None,
    store_env: Mapping[str, str] | None = None,
    keys: str = API_KEY,
    extra: tuple[str, ...] = (),
) -> Iterator[RunningServer]:
    """Start a server and wait for the line saying where it listens (its socket is
    bound and listening by then); stop it gracefully afterwards. The server is forked from
    a process that has its modules imported already (``tests/forking.py``)."""
    from tests.conftest import TEST_KEY

    env = {**os.environ, **(store_env or {}), "AGENTJOURNAL_API_KEYS": keys, MODEL_KEY_ENV: TEST_KEY}
    arguments = ["--store", str(store)] if store is not None else []
    arguments += ["serve", "--port", "0", "--api-base", model_url, "--api-key-env", MODEL_KEY_ENV,
                  "--model-provider", "openai", *extra]  # fmt: skip
    process = PRELOADED.fork(arguments, env)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if "serving on" not in line:
            process.kill()
            _, err = process.communicate(timeout=30)
            raise RuntimeError(f"the server did not start: {line!r} {err}")
        yield RunningServer(url=line.split()[-1], process=process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
