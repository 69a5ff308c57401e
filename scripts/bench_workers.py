"""Self-hosted environments measured with Anthropic's own worker (``scripts/bench --workers``).

Everything runs in processes of its own, over real sockets: ``agentjournal serve``, the
scripted model server (in this process's thread), and ``EnvironmentWorker`` processes
(``python -c`` with the SDK, unmodified).

* **failover**: a worker runs a long command and is killed (``kill -9`` of it and its
  commands, as a lost machine); the seconds until a second worker, already polling, starts
  the same call (the default local lease, 6 s, plus a poll of 1-3 s);
* **throughput**: sessions per second whose one tool call waits (``sleep 1``), with 1, 2 and
  4 workers on one server, on PostgreSQL when given (else SQLite): the protocol's scaling,
  not two cores' contention, as the workers mostly wait;
* **overhead per call**: a turn with one quick call (``true``) in a self-hosted session whose
  worker already serves it, against the same turn on the server's own host compute.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

WORKER = """
import asyncio, sys
import anthropic
from anthropic.lib.environments import EnvironmentWorker
url, env, key, folder, name, idle = sys.argv[1:7]
client = anthropic.AsyncAnthropic(api_key="unused", base_url=url)
print("ready", flush=True)
asyncio.run(EnvironmentWorker(client, environment_id=env, environment_key=key, workdir=folder,
                              worker_id=name, max_idle=float(idle)).run())
"""
KEY = "bench-key"


@contextlib.contextmanager
def server(model_url: str, store_env: dict[str, str]) -> Iterator[Any]:
    """``agentjournal serve`` on the store; yields an SDK client of it."""
    import anthropic

    process = subprocess.Popen(
        [sys.executable, "-m", "agentjournal", "serve", "--port", "0", "--api-base", model_url,
         "--model-provider", "openai"],
        env={**os.environ, **store_env, "AGENTJOURNAL_API_KEYS": KEY, "OPENAI_API_KEY": "unused"},
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[-1]
        yield anthropic.Anthropic(api_key=KEY, base_url=url, max_retries=0)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@contextlib.contextmanager
def workers(client: Any, environment_id: str, key: str, folders: list[Path],
            idle: float = 0.5) -> Iterator[list[subprocess.Popen[str]]]:  # fmt: skip
    """Worker processes, one per folder (named after it), all started at once; yields once
    every one is ready to poll."""
    processes = []
    try:
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            processes.append(subprocess.Popen(
                [sys.executable, "-c", WORKER, str(client.base_url).rstrip("/"), environment_id, key, str(folder),
                 folder.name, str(idle)],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True,
            ))  # fmt: skip
        for process in processes:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield processes
    finally:
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


def fleet(client: Any) -> tuple[str, str, str]:
    """A self-hosted environment, an agent with Anthropic's toolset, a worker key."""
    environment = client.beta.environments.create(name="fleet", config={"type": "self_hosted"})
    agent = client.beta.agents.create(name="a", model="bench", tools=[{"type": "agent_toolset_20260401"}])
    minted = client.post(
        f"/x-agentjournal/v1/environments/{environment.id}/worker_keys", body={}, cast_to=object
    )
    return environment.id, agent.id, str(minted["secret"])


def send(client: Any, session_id: str, text: str) -> None:
    client.beta.sessions.events.send(session_id, events=[{"type": "user.message", "content": text}])


def idles(client: Any, session_id: str) -> int:
    return sum(
        e.type == "session.status_idle" for e in client.beta.sessions.events.list(session_id, limit=1000)
    )


def wait(condition: Any, seconds: float = 120.0, interval: float = 0.2) -> None:
    """Until ``condition`` holds, read every ``interval`` seconds (a client reading the log,
    not hammering the server it measures)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark waited too long")
        time.sleep(interval)


def failover(model: Any, store_env: dict[str, str], folder: Path) -> dict[str, float]:
    from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall

    with server(model.base_url, store_env) as client:
        environment_id, agent_id, key = fleet(client)
        session = client.beta.sessions.create(agent=agent_id, environment_id=environment_id).id
        model.enqueue(Reply(tool_calls=[ScriptedToolCall("bash", {"command": "touch started; sleep 60"})]))
        with workers(client, environment_id, key, [folder / "first"]) as (first,):
            send(client, session, "go")
            wait(lambda: (folder / "first" / "started").exists())
            with workers(client, environment_id, key, [folder / "second"]):
                os.killpg(first.pid, signal.SIGKILL)
                killed = time.perf_counter()
                wait(lambda: (folder / "second" / "started").exists())
                return {"seconds_to_take_over": round(time.perf_counter() - killed, 2)}


def throughput(model: Any, store_env: dict[str, str], folder: Path, count: int, sessions: int
               ) -> dict[str, float]:  # fmt: skip
    from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall

    with server(model.base_url, store_env) as client:
        environment_id, agent_id, key = fleet(client)
        ids = [
            client.beta.sessions.create(agent=agent_id, environment_id=environment_id).id
            for _ in range(sessions)
        ]
        # The model's replies are one queue: every call is taken before any answer is queued.
        model.enqueue(*(Reply(tool_calls=[ScriptedToolCall("bash", {"command": "sleep 1"})]) for _ in ids))
        for session in ids:
            send(client, session, "go")
        wait(lambda: model.script.__len__() == 0)
        model.enqueue(*(Reply(text="ok") for _ in ids))
        with workers(client, environment_id, key, [folder / f"w{count}-{n}" for n in range(count)]):
            started = time.perf_counter()  # from when every worker polls
            wait(lambda: all(idles(client, s) for s in ids), 600)
            took = time.perf_counter() - started
        return {
            "sessions": sessions,
            "seconds": round(took, 2),
            "sessions_per_second": round(sessions / took, 2),
        }


def overhead(model: Any, store_env: dict[str, str], folder: Path, repeat: int) -> dict[str, float]:
    """Median seconds from send to the turn's idle, one ``true`` call per turn."""
    from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall

    def turns(client: Any, session: str) -> list[float]:
        times = []
        for number in range(repeat + 1):
            model.enqueue(Reply(tool_calls=[ScriptedToolCall("bash", {"command": "true"})]), Reply(text="ok"))
            started = time.perf_counter()
            send(client, session, f"turn {number}")
            wait(lambda n=number: idles(client, session) > n, interval=0.01)
            if number:  # the first turn brings the worker (or the compute) to the session
                times.append(time.perf_counter() - started)
        return times

    with server(model.base_url, store_env) as client:
        environment_id, agent_id, key = fleet(client)
        cloud = client.beta.environments.create(name="here")
        local = turns(client, client.beta.sessions.create(agent=agent_id, environment_id=cloud.id).id)
        session = client.beta.sessions.create(agent=agent_id, environment_id=environment_id).id
        with workers(client, environment_id, key, [folder / "overhead"], idle=60):
            remote = turns(client, session)
    return {"host_compute_ms": round(statistics.median(local) * 1000, 1),
            "worker_ms": round(statistics.median(remote) * 1000, 1),
            "overhead_per_call_ms": round((statistics.median(remote) - statistics.median(local)) * 1000, 1)}  # fmt: skip


def run(quick: bool, postgres: dict[str, str] | None) -> dict[str, object]:
    from agentjournal.infrastructure.models.scripted import ScriptedModelServer

    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as folder, ScriptedModelServer() as model:
        root = Path(folder)
        sqlite = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(root / "bench.db")}
        results["failover"] = failover(model, sqlite, root / "failover")
        store = postgres or sqlite
        results["throughput_store"] = store["PERSISTENCE_MODULE"]
        for count in (1, 2, 4):
            results[f"throughput_{count}_workers"] = throughput(model, store, root, count, 4 if quick else 12)
        results["overhead"] = overhead(model, sqlite, root, 3 if quick else 10)
    return results
