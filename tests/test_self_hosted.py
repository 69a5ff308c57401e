"""Self-hosted environments: Anthropic's unmodified ``EnvironmentWorker``, in processes of
its own, runs the tools of sessions whose agent loop stays on the server."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anthropic
import httpx
import pytest

from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests.conftest import wait_until
from tests.serving import API_KEY, RunningServer, running_server

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
    # A session of its own, so killing the group is a machine lost: the worker and its commands.
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "worker ready"
        yield process
    finally:
        lose_machine(process)


def lose_machine(process: subprocess.Popen[str]) -> None:
    """``kill -9`` of the worker and of every command it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
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
        state = client.get(f"/x-agentjournal/v1/sessions/{session_id}/state", cast_to=object)
        assert list(state["ran_on"].values()) == [answered["payload"]["worker"]]  # what the browser shows
        assert client.get(f"/x-agentjournal/v1/sessions/{session_id}/verify", cast_to=object)["ok"] is True
        assert key not in str(log)
        # A worker posting its result again (a retry, a failed-over worker) changes nothing.
        as_worker = client.with_options(api_key=None, auth_token=key)  # type: ignore[call-arg]
        again = as_worker.beta.sessions.events.send(session_id, events=[
            {"type": "user.tool_result", "tool_use_id": use.id, "content": [{"type": "text", "text": "again"}]}
        ])  # fmt: skip
        assert again.data[0].id == result.id
        assert len(events_of(client, session_id)) == len(events)


def test_web_fetch_and_web_search_are_run_by_the_server_and_never_published_to_a_worker(
    model_server, store, serve, requested
):
    page = serve("127.0.0.1") + "/page.html"
    with running_server(model_server.base_url, store) as server:
        client = server.client()
        environment_id, session_id = self_hosted_session(client)
        model_server.enqueue(
            Reply(tool_calls=[ScriptedToolCall("web_fetch", {"url": page}),
                              ScriptedToolCall("web_search", {"query": "agentjournal"})]),
            Reply(text="Read it."),
        )  # fmt: skip
        prompt(client, session_id, "Read the page, search the web.")  # no worker anywhere
        wait_until(lambda: ended(client, session_id), "the turn's end", 60)
        assert requested == ["/page.html"]  # fetched by the server, once
        events = events_of(client, session_id)
        results = [e for e in events if e.type == "agent.tool_result"]
        fetched, searched = (e.content[0].text for e in results)
        assert "Hello there" in fetched and not results[0].is_error
        assert "no web search service is configured" in searched and results[1].is_error
        assert not any(e.type == "user.tool_result" for e in events)
        assert [e.stop_reason.type for e in events if e.type == "session.status_idle"] == ["end_turn"]
        assert "Hello there" in str(model_server.requests[-1]["messages"])
        key = mint_key(client, environment_id)
        work = client.with_options(api_key=None, auth_token=key).beta.environments.work  # type: ignore[call-arg]
        assert list(work.list(environment_id)) == []  # nothing was queued for a worker


def test_a_session_waiting_for_a_worker_is_running_in_the_listing_and_retrieve_never_idle(
    model_server, store, tmp_path
):
    with running_server(model_server.base_url, store) as server:
        client = server.client()
        environment_id, session_id = self_hosted_session(client)
        model_server.enqueue(
            Reply(tool_calls=[ScriptedToolCall("bash", {"command": "true"})]), Reply(text="Ok.")
        )
        prompt(client, session_id, "Go.")
        log = f"/x-agentjournal/v1/sessions/{session_id}/log"

        def paused() -> bool:
            return any(e["type"] == "TurnCompleted" for e in client.get(log, cast_to=object)["data"])

        wait_until(paused, "the turn to pause for a worker (its lease released)", 90)

        def listed(**query: object) -> dict[str, str]:
            return {s.id: s.status for s in client.beta.sessions.list(**query)}  # type: ignore[arg-type]

        assert listed()[session_id] == "running"
        assert session_id in listed(statuses=["running"]) and session_id not in listed(statuses=["idle"])
        assert client.beta.sessions.retrieve(session_id).status == "running"
        assert not any(e.type == "session.status_idle" for e in events_of(client, session_id))
        key = mint_key(client, environment_id)
        with environment_worker(server, environment_id, key, tmp_path / "w", "w"):
            wait_until(lambda: ended(client, session_id), "the turn's end", 60)
        assert listed()[session_id] == "idle" and client.beta.sessions.retrieve(session_id).status == "idle"


def test_the_python_api_runs_a_session_in_a_self_hosted_environment_whose_worker_reaches_a_server(
    model_server, store, tmp_path
):
    from agentjournal import ManagedAgent, ManagedConfig
    from agentjournal.application.errors import ConfigError
    from tests.conftest import TEST_KEY

    def agent(environment: str, tools: list = TOOLSET) -> ManagedAgent:  # type: ignore[type-arg]
        config = ManagedConfig(
            model="gpt-4o-mini", api_base=model_server.base_url, api_key=TEST_KEY, tools=tools
        )
        return ManagedAgent(config=config, store=str(store), environment=environment)

    with running_server(model_server.base_url, store) as server:
        client = server.client()
        environment = client.beta.environments.create(name="fleet", config={"type": "self_hosted"})
        key = mint_key(client, environment.id)
        model_server.enqueue(
            Reply(
                tool_calls=[ScriptedToolCall("bash", {"command": "echo from-the-worker > proof.txt && pwd"})]
            ),
            Reply(text="Done."),
        )
        managed = agent(environment.id)
        folder = tmp_path / "worker"
        with environment_worker(server, environment.id, key, folder, "worker-one"):
            assert managed.run("Leave a proof.") == "Done."
        assert (folder / "proof.txt").read_text() == "from-the-worker\n"
        assert str(folder) in model_server.requests[-1]["messages"][-1]["content"]
        ran = [e for e in managed.audit_log(types=("RemoteToolAnswered",))]
        assert [e.payload["worker"].split("/")[-1] for e in ran] == ["worker-one"]
        assert managed.verify().ok
        # The server serves the session like its own: its worker's result is a user.tool_result.
        session = client.beta.sessions.retrieve(f"sesn_{managed.session_id.replace('-', '')}")
        assert session.status == "idle"
        assert any(e.type == "user.tool_result" for e in events_of(client, session.id))
        with pytest.raises(ConfigError, match="not offered in a self-hosted environment"):
            agent(environment.id, tools=["execute_command"]).create_session()
        cloud = client.beta.environments.create(name="here")
        with pytest.raises(ConfigError, match="not a self_hosted environment"):
            agent(cloud.id)


def test_a_python_api_turn_no_worker_answers_ends_with_a_clear_error(model_server, store):
    from agentjournal import ManagedAgent, ManagedConfig
    from agentjournal.application.catalog import Catalog
    from agentjournal.application.store import open_store
    from tests.conftest import TEST_KEY

    service = open_store({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(store),
                          "AGENTJOURNAL_WORKER_WAIT_SECONDS": "1"})  # fmt: skip
    fleet = Catalog(service).create_environment({"name": "fleet", "config": {"type": "self_hosted"}})
    config = ManagedConfig(
        model="gpt-4o-mini", api_base=model_server.base_url, api_key=TEST_KEY, tools=TOOLSET
    )
    managed = ManagedAgent(config=config, store=service, environment=f"env_{fleet.id.hex}")
    model_server.enqueue(Reply(tool_calls=[ScriptedToolCall("bash", {"command": "true"})]))
    with pytest.raises(Exception, match="no worker of the session's self-hosted environment answered"):
        managed.run("Go.")
    info = managed.retrieve_session()
    assert info["status"] == "error"
    closed = [e.payload for e in managed.audit_log(types=("ToolResultRecorded",))]
    assert len(closed) == 1 and closed[0]["result"]["is_error"]


def test_an_mcp_servers_tool_in_a_self_hosted_session_is_called_by_the_server(model_server, store):
    from tests.mcp_servers import mcp_server

    with (
        mcp_server() as tools,
        running_server(model_server.base_url, store, extra=("--allow-private-mcp",)) as server,
    ):
        client = server.client()
        environment = client.beta.environments.create(name="fleet", config={"type": "self_hosted"})
        toolset = {"type": "mcp_toolset", "mcp_server_name": "calc",
                   "default_config": {"permission_policy": {"type": "always_allow"}}}  # fmt: skip
        agent = client.beta.agents.create(name="a", model="claude-haiku-4-5", tools=[*TOOLSET, toolset],
                                          mcp_servers=[{"type": "url", "name": "calc", "url": tools.url}])  # fmt: skip
        session_id = client.beta.sessions.create(agent=agent.id, environment_id=environment.id).id
        model_server.enqueue(
            Reply(tool_calls=[ScriptedToolCall("mcp__calc__add", {"a": 20, "b": 22})]), Reply(text="42.")
        )
        prompt(client, session_id, "20 + 22?")  # no worker: none is needed
        wait_until(lambda: ended(client, session_id), "the turn's end", 60)
        assert tools.calls == [("add", {"a": 20, "b": 22})]
        result = next(e for e in events_of(client, session_id) if e.type == "agent.mcp_tool_result")
        assert result.content[0].text == "42"


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


def test_a_worker_killed_mid_command_loses_its_lease_and_a_second_worker_runs_the_call(
    model_server, store, tmp_path
):
    with running_server(model_server.base_url, store) as server:
        client = server.client()
        environment_id, session_id = self_hosted_session(client)
        key = mint_key(client, environment_id)
        command = "touch started && sleep 3 && echo done >> effect.txt && cat effect.txt"
        model_server.enqueue(
            Reply(tool_calls=[ScriptedToolCall("bash", {"command": command})]), Reply(text="Ok.")
        )
        first, second = tmp_path / "first", tmp_path / "second"
        with environment_worker(server, environment_id, key, first, "worker-one") as lost:
            prompt(client, session_id, "Do it.")
            wait_until(lambda: (first / "started").exists(), "the first worker to start the command", 60)
            assert client.beta.sessions.retrieve(session_id).status == "running"
            lose_machine(lost)
        with environment_worker(server, environment_id, key, second, "worker-two"):
            wait_until(lambda: ended(client, session_id), "the turn's end", 60)
        assert not (first / "effect.txt").exists()
        assert (second / "effect.txt").read_text() == "done\n"
        events = events_of(client, session_id)
        results = [e for e in events if e.type == "user.tool_result"]
        assert len(results) == 1 and results[0].content[0].text.strip() == "done"
        assert [e.stop_reason.type for e in events if e.type == "session.status_idle"] == ["end_turn"]
        log = client.get(f"/x-agentjournal/v1/sessions/{session_id}/log", cast_to=object)["data"]
        assert [e["payload"]["worker"].split("/")[-1] for e in log if e["type"] == "RemoteToolAnswered"] == [
            "worker-two"
        ]
        work = client.with_options(api_key=None, auth_token=key).beta.environments.work  # type: ignore[call-arg]
        assert len(list(work.list(environment_id))) == 1  # the lost worker's item, claimed again


SESSIONS = 12
"""Sessions served at once by three workers (four times as many sessions as workers)."""

UNHURRIED_LEASES = {"AGENTJOURNAL_LEASE_SECONDS": "60", "AGENTJOURNAL_WORK_LEASE_SECONDS": "60"}
"""Leases for a test of many sessions at once, on a machine that may be busy: twelve turns
starting together in one server, on two shared cores, have kept a turn's heartbeat from
renewing its 10 s lease (the turn then fails, "lost the turn's lease", before its model
call), and a worker's beat can be later than the 6 s work lease. Failover on the default
leases is the killed worker's test; this one is about claims."""


@pytest.mark.timeout(240)
@pytest.mark.parametrize("store_env", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_the_user_on_one_server_and_three_workers_for_many_sessions_on_another_share_a_postgresql_store(
    model_server, store_env, tmp_path
):
    with (
        running_server(model_server.base_url, store_env={**store_env, **UNHURRIED_LEASES}) as front,
        running_server(model_server.base_url, store_env={**store_env, **UNHURRIED_LEASES}) as back,
    ):
        client = front.client()
        environment = client.beta.environments.create(name="fleet", config={"type": "self_hosted"})
        agent = client.beta.agents.create(name="a", model="claude-haiku-4-5", tools=TOOLSET)
        key = mint_key(client, environment.id)
        sessions = [
            client.beta.sessions.create(agent=agent.id, environment_id=environment.id).id
            for _ in range(SESSIONS)
        ]
        # The model's replies are one queue: every first reply (a call) is taken before any
        # second one (an answer) is queued, and the workers start once every call waits.
        model_server.enqueue(
            *(
                Reply(tool_calls=[ScriptedToolCall("bash", {"command": f"echo {n} >> ran.txt"})])
                for n in range(SESSIONS)
            )
        )
        for session_id in sessions:
            prompt(client, session_id, "Go.")
        for session_id in sessions:
            wait_until(lambda s=session_id: any(e.type == "agent.tool_use" for e in events_of(client, s)),
                       "every session's call", 120)  # fmt: skip
        model_server.enqueue(*(Reply(text="Ok.") for _ in sessions))
        with contextlib.ExitStack() as workers:
            for name in ("w1", "w2", "w3"):
                # A worker serves one session until it has been idle max_idle seconds.
                workers.enter_context(
                    environment_worker(back, environment.id, key, tmp_path / name, name, 1.0)
                )
            for session_id in sessions:
                wait_until(lambda s=session_id: ended(client, s), "every session's turn to end", 180)
        ran = [line for name in ("w1", "w2", "w3") if (tmp_path / name / "ran.txt").exists()
               for line in (tmp_path / name / "ran.txt").read_text().split()]  # fmt: skip
        assert sorted(ran, key=int) == [str(n) for n in range(SESSIONS)]  # every call ran, and once
        for session_id in sessions:
            events = events_of(client, session_id)
            assert len([e for e in events if e.type == "user.tool_result"]) == 1


def test_a_graceful_stop_ends_the_workers_run_and_the_worker_goes_on_polling(model_server, store, tmp_path):
    with running_server(model_server.base_url, store) as server:
        client = server.client()
        environment_id, session_id = self_hosted_session(client)
        key = mint_key(client, environment_id)
        model_server.enqueue(
            Reply(tool_calls=[ScriptedToolCall("bash", {"command": "true"})]), Reply(text="Ok.")
        )
        as_worker = client.with_options(api_key=None, auth_token=key)  # type: ignore[call-arg]
        with environment_worker(server, environment_id, key, tmp_path / "w", "w") as worker:
            prompt(client, session_id, "Go.")
            wait_until(lambda: ended(client, session_id), "the turn's end", 60)
            item = next(iter(as_worker.beta.environments.work.list(environment_id)))
            assert item.state == "active"  # the worker stays on the session for its max_idle
            stopping = client.beta.environments.work.stop(item.id, environment_id=environment_id, force=False)
            assert stopping.state == "stopping" and stopping.stop_requested_at is not None
            wait_until(
                lambda: (
                    client.beta.environments.work.retrieve(item.id, environment_id=environment_id).state
                    == "stopped"
                ),
                "the worker to hear the stop at its next beat and end the item",
            )
            assert worker.poll() is None  # it went back to polling
            with pytest.raises(anthropic.ConflictError):
                as_worker.beta.environments.work.stop(item.id, environment_id=environment_id, force=True)


def test_a_turn_no_worker_serves_is_closed_after_the_wait(model_server, store):
    wait = {"AGENTJOURNAL_WORKER_WAIT_SECONDS": "1", "AGENTJOURNAL_LEASE_SECONDS": "1"}
    with running_server(model_server.base_url, store, store_env=wait) as server:
        client = server.client()
        environment_id, session_id = self_hosted_session(client)
        model_server.enqueue(Reply(tool_calls=[ScriptedToolCall("bash", {"command": "true"})]))
        prompt(client, session_id, "Go.")
        wait_until(lambda: client.beta.sessions.retrieve(session_id).status == "idle", "the wait to run out")
        result = next(e for e in events_of(client, session_id) if e.type == "user.tool_result")
        assert (
            result.is_error and "no worker of its self-hosted environment served it" in result.content[0].text
        )


def test_what_a_worker_or_client_can_send_wrongly_gets_an_api_error_never_a_500(model_server, store):
    with running_server(model_server.base_url, store) as server:
        client = server.client()
        environment_id, session_id = self_hosted_session(client)
        key = mint_key(client, environment_id)
        worker = httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {key}"})
        owner = httpx.Client(base_url=server.url, headers={"x-api-key": API_KEY})
        work = f"/v1/environments/{environment_id}/work"
        cases = [
            (worker.get(f"{work}/poll", params={"block_ms": "0"}), 400),
            (worker.get(f"{work}/poll", params={"block_ms": "soon"}), 400),
            (worker.get("/v1/environments/env_nope/work/poll"), 403),
            (worker.post(f"{work}/work_missing/ack"), 404),
            (worker.post(f"{work}/work_missing/heartbeat", params={"expected_last_heartbeat": "x"}), 404),
            (worker.post(f"{work}/work_missing/stop", content=b"{not json"), 400),
            (worker.get(f"{work}/work_missing"), 403),
            (worker.get(f"{work}", params={"limit": "0"}), 400),
            (owner.get(f"{work}/poll"), 401),
            (owner.get(f"{work}/work_missing"), 404),
            (owner.post(f"{work}/work_missing", json={"metadata": {"a": 1}}), 400),
            (
                owner.post(f"/x-agentjournal/v1/environments/{environment_id}/worker_keys", json={"name": 3}),
                400,
            ),
            (
                worker.post(
                    f"/v1/sessions/{session_id}/events",
                    json={"events": [{"type": "user.message", "content": "not a worker's to send"}]},
                ),
                403,
            ),  # fmt: skip
            (
                worker.post(
                    f"/v1/sessions/{session_id}/events",
                    json={
                        "events": [{"type": "user.tool_result", "tool_use_id": "sevt_nope", "content": []}]
                    },
                ),
                400,
            ),  # fmt: skip
            (worker.delete(f"/v1/sessions/{session_id}"), 403),
        ]
        for response, status in cases:
            assert response.status_code == status, (response.request.url, response.text)
            assert response.json()["type"] == "error"
        cloud = client.beta.environments.create(name="cloud")
        refused = owner.post(f"/x-agentjournal/v1/environments/{cloud.id}/worker_keys", json={})
        assert refused.status_code == 400 and "self_hosted" in refused.json()["error"]["message"]


WORKER_IMAGE = "agentjournal-worker:latest"


@pytest.fixture(scope="module")
def worker_image(engine) -> str:  # type: ignore[no-untyped-def]
    """The worker image, built offline by scripts/build-worker-image when it is missing."""
    import docker

    try:
        engine.images.get(WORKER_IMAGE)
    except docker.errors.ImageNotFound:
        script = Path(__file__).parent.parent / "scripts" / "build-worker-image"
        subprocess.run([str(script), WORKER_IMAGE], check=True, env={**os.environ, "PYTHON": sys.executable},
                       capture_output=True, timeout=600)  # fmt: skip
    return WORKER_IMAGE


@pytest.mark.docker
@pytest.mark.timeout(300)
def test_the_worker_runs_in_a_container_and_the_commands_run_inside_it(
    model_server, store, engine, worker_image
):
    with running_server(model_server.base_url, store) as server:
        client = server.client()
        environment_id, session_id = self_hosted_session(client)
        key = mint_key(client, environment_id)
        model_server.enqueue(
            Reply(tool_calls=[ScriptedToolCall("bash", {"command": "pwd && id -u && echo $HOME"})]),
            Reply(text="Ok."),
        )
        container = engine.containers.run(
            worker_image, detach=True, network_mode="host", labels={"agentjournal.test": "worker"},
            environment={"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_ENVIRONMENT_ID": environment_id,
                         "ANTHROPIC_ENVIRONMENT_KEY": key, "WORKER_ID": "container-one"},
        )  # fmt: skip
        try:
            prompt(client, session_id, "Where are you?")
            wait_until(lambda: ended(client, session_id), "the turn's end", 120)
        finally:
            container.remove(force=True)
        result = next(e for e in events_of(client, session_id) if e.type == "user.tool_result")
        assert result.content[0].text.split() == ["/workspace", "1000", "/home/sandbox"]


def test_the_command_line_mints_lists_and_revokes_worker_keys(store):
    from agentjournal.application.catalog import Catalog
    from agentjournal.application.service import SessionService

    service = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(store)})
    catalog = Catalog(service)
    fleet = "env_" + catalog.create_environment({"name": "fleet", "config": {"type": "self_hosted"}}).id.hex
    cloud = "env_" + catalog.create_environment({"name": "here"}).id.hex
    service.close()

    def cli(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "agentjournal", "--store", str(store), "worker-key", *argv],
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip

    minted = json.loads(cli("mint", fleet, "--name", "laptop").stdout)
    assert minted["secret"].startswith("ajwk_") and minted["name"] == "laptop"
    listed = json.loads(cli("list", fleet).stdout)
    assert [k["id"] for k in listed] == [minted["id"]] and minted["secret"] not in str(listed)
    assert json.loads(cli("revoke", fleet, minted["id"]).stdout)["revoked_at"] is not None
    refused = cli("mint", cloud)
    assert refused.returncode != 0 and "not a self_hosted environment" in refused.stderr
