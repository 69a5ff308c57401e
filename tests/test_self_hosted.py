"""Self-hosted environments: Anthropic's unmodified ``EnvironmentWorker``, in processes of
its own, runs the tools of sessions whose agent loop stays on the server."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anthropic
import pytest

from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.conftest import wait_until
from tests.serving import RunningServer, running_server

pytestmark = pytest.mark.timeout(120)

TOOLSET = [{"type": "agent_toolset_20260401"}]


def self_hosted_session(client) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """A self-hosted environment and a session in it: (environment id, session id)."""
    environment = client.beta.environments.create(name="fleet", config={"type": "self_hosted"})
    agent = client.beta.agents.create(name="a", model="claude-haiku-4-5", tools=TOOLSET)
    session = client.beta.sessions.create(agent=agent.id, environment_id=environment.id)
    return environment.id, session.id


def mint_key(client, environment_id: str, name: str = "") -> str:  # type: ignore[no-untyped-def]
    minted = client.post(
        f"/x-agentjournal/v1/environments/{environment_id}/worker_keys", body={"name": name}, cast_to=object
    )
    return str(minted["secret"])


@contextmanager
def environment_worker(server: RunningServer, environment_id: str, key: str, folder: Path, name: str,
                       max_idle: float = 60.0) -> Iterator[subprocess.Popen[str]]:  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "tests.environment_worker", server.url, environment_id, key, str(folder), name,
            str(max_idle)]  # fmt: skip
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "worker ready"
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


def events_of(client, session_id: str) -> list:  # type: ignore[no-untyped-def]
    return list(client.beta.sessions.events.list(session_id, limit=1000).data)


def ended(client, session_id: str) -> bool:  # type: ignore[no-untyped-def]
    return any(e.type == "session.status_idle" for e in events_of(client, session_id))


def prompt(client, session_id: str, text: str) -> None:  # type: ignore[no-untyped-def]
    client.beta.sessions.events.send(
        session_id, events=[{"type": "user.message", "content": [{"type": "text", "text": text}]}]
    )


def test_the_worker_runs_a_command_in_its_folder_and_the_model_reads_the_result(
    model_server, store, tmp_path
):
    with running_server(model_server.base_url, store) as server:
        client = server.client()
        environment_id, session_id = self_hosted_session(client)
        key = mint_key(client, environment_id, "laptop")
        model_server.enqueue(
            Reply(tool_calls=[ScriptedToolCall("bash", {"command": "echo made-here > proof.txt && pwd"})]),
            Reply(text="Done."),
        )
        folder = tmp_path / "worker"
        with environment_worker(server, environment_id, key, folder, "worker-one"):
            prompt(client, session_id, "Leave a proof.")
            wait_until(lambda: ended(client, session_id), "the turn's end", 60)
        assert (folder / "proof.txt").read_text() == "made-here\n"
        assert not (Path.cwd() / "proof.txt").exists()
        events = events_of(client, session_id)
        types = [e.type for e in events]
        use = next(e for e in events if e.type == "agent.tool_use")
        assert use.evaluated_permission == "allow"
        result = next(e for e in events if e.type == "user.tool_result")
        assert result.tool_use_id == use.id
        assert str(folder) in result.content[0].text
        assert "agent.tool_result" not in types
        idle = [e for e in events if e.type == "session.status_idle"]
        assert [i.stop_reason.type for i in idle] == ["end_turn"]
        assert types[-1] == "session.status_idle"
        # The model got the worker's output as the tool's result.
        assert str(folder) in model_server.requests[-1]["messages"][-1]["content"]
        log = client.get(f"/x-agentjournal/v1/sessions/{session_id}/log", cast_to=object)["data"]
        answered = next(e for e in log if e["type"] == "RemoteToolAnswered")
        assert answered["payload"]["worker"].endswith("/worker-one")
        assert client.get(f"/x-agentjournal/v1/sessions/{session_id}/verify", cast_to=object)["ok"] is True
        assert key not in str(log)


def test_wrong_and_foreign_worker_keys_are_refused(model_server, store):
    with running_server(model_server.base_url, store) as server:
        client = server.client()
        environment_id, session_id = self_hosted_session(client)
        other_environment, other_session = self_hosted_session(client)
        key = mint_key(client, environment_id)
        foreign = mint_key(client, other_environment)

        def work(secret: str):  # type: ignore[no-untyped-def]
            return server.client().with_options(api_key=None, auth_token=secret).beta.environments.work  # type: ignore[call-arg]

        assert work(key).poll(environment_id, block_ms=1) is None
        with pytest.raises(anthropic.AuthenticationError):
            work("ajwk_not-a-key").poll(environment_id)
        with pytest.raises(anthropic.PermissionDeniedError):
            work(foreign).poll(environment_id)
        as_worker = server.client().with_options(api_key=None, auth_token=foreign)  # type: ignore[call-arg]
        with pytest.raises(anthropic.PermissionDeniedError):
            as_worker.beta.sessions.retrieve(session_id)
        assert as_worker.beta.sessions.retrieve(other_session).id == other_session
        with pytest.raises(anthropic.PermissionDeniedError):
            as_worker.beta.agents.list()
        keys = f"/x-agentjournal/v1/environments/{environment_id}/worker_keys"
        listed = client.get(keys, cast_to=object)["data"]
        assert [k["hint"] for k in listed] == [f"...{key[-4:]}"] and key not in str(listed)
        client.post(f"{keys}/{listed[0]['id']}/revoke", cast_to=object)
        with pytest.raises(anthropic.AuthenticationError):
            work(key).poll(environment_id)
