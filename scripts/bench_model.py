"""The model call, the first turn and idle memory, measured (``scripts/bench --model-call``).

* one streamed completion against the scripted OpenAI-compatible server (in its own process,
  so its work is not counted against the client's CPU) through ``LiteLLMModel``'s fast path
  (priced, and a model without a price) and its full path (``litellm.completion``), the
  ``openai`` SDK and raw httpx, interleaved call by call so the machine's load weighs on
  each alike: wall and CPU (the client process's, every thread of it) per call, and each
  client's overhead over raw httpx's, the floor a client can reach on the same server; then
  a profile of the fast path, its CPU by part of the stack;
* ``agentjournal serve``: its first turn right after it says it is listening against a warm
  turn (``send`` to ``session.status_idle``), and the seconds from its start to that line;
* resident memory (``VmRSS``) of an idle ``serve``, of a new interpreter with and without
  litellm imported, and of one that has made one call through ``LiteLLMModel``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

PROMPT = [{"role": "user", "content": "hello there"}]


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
        "n": len(ordered),
    }


@contextlib.contextmanager
def scripted_server() -> Iterator[str]:
    """The scripted model in a process of its own; yields its base URL (``.../v1``)."""
    server = subprocess.Popen(
        [sys.executable, "-m", "agentjournal.infrastructure.models.scripted", "--port", "0"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        yield server.stdout.readline().split()[-1]
    finally:
        server.terminate()
        server.wait(timeout=30)


def callers(url: str) -> dict[str, Callable[[], str]]:
    """One streamed call each way, returning the reply's text (checked, so a caller that
    silently got nothing is not timed as a fast one)."""
    import httpx
    import openai

    from agentjournal.application.ports import ModelReply
    from agentjournal.domain import UserMessage
    from agentjournal.infrastructure.models.litellm_model import LiteLLMModel

    # The scripted server answers any name. A model in litellm's price table is priced in
    # passing; for one it has no price for, litellm formats the traceback of its failed
    # lookup (reading source lines) at each of its pricings: a local model pays for that.
    fast = LiteLLMModel("openai/gpt-4o-mini", api_base=url, api_key="unused")
    fast_unpriced = LiteLLMModel("openai/scripted", api_base=url, api_key="unused")
    full = LiteLLMModel("openai/gpt-4o-mini", api_base=url, api_key="unused", direct=False)
    sdk = openai.OpenAI(base_url=url, api_key="unused", max_retries=0)
    raw = httpx.Client(base_url=url, timeout=60)

    def through(model: LiteLLMModel) -> Callable[[], str]:
        def call() -> str:
            *_, reply = model.stream("", [UserMessage("hello there")], ())
            assert isinstance(reply, ModelReply)
            return reply.message.content

        return call

    def through_sdk() -> str:
        stream = sdk.chat.completions.create(
            model="scripted",
            messages=PROMPT,
            stream=True,
            stream_options={"include_usage": True},  # type: ignore[arg-type]
        )
        with stream:
            return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    def through_httpx() -> str:
        body = {
            "model": "scripted",
            "messages": PROMPT,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        text = []
        with raw.stream("POST", "/chat/completions", json=body) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    choices = json.loads(line[6:])["choices"]
                    if choices:
                        text.append(choices[0]["delta"].get("content") or "")
        return "".join(text)

    return {
        "adapter_fast_path": through(fast),
        "adapter_fast_path_unpriced": through(fast_unpriced),
        "adapter_full_path": through(full),
        "openai_sdk": through_sdk,
        "raw_httpx": through_httpx,
    }


ADAPTERS = ("adapter_fast_path", "adapter_fast_path_unpriced", "adapter_full_path")


def model_call(repeat: int) -> dict[str, Any]:
    """The callers interleaved, ``repeat`` calls each after a warm-up; each one's overhead
    over raw httpx's, in wall and CPU time (medians, and the p95 of each call's time less
    the median of raw httpx's), and each adapter path's as a multiple of the SDK's; then
    where the fast path's time goes (:func:`fast_path_profile`)."""
    with scripted_server() as url:
        ways = callers(url)
        for call in ways.values():
            for _ in range(3):
                assert call(), "the scripted server answered with no text"
        wall: dict[str, list[float]] = {name: [] for name in ways}
        cpu: dict[str, list[float]] = {name: [] for name in ways}
        names = list(ways)
        for number in range(repeat):
            for name in (
                names[number % len(names) :] + names[: number % len(names)]
            ):  # each goes first in turn
                started, cpu_started = time.perf_counter(), time.process_time()
                ways[name]()
                wall[name].append((time.perf_counter() - started) * 1000)
                cpu[name].append((time.process_time() - cpu_started) * 1000)
        profile = fast_path_profile(url, repeat)
    results: dict[str, Any] = {
        name: {"wall": summary(wall[name]), "cpu": summary(cpu[name])} for name in ways
    }
    for measure, times in (("wall", wall), ("cpu", cpu)):
        floor = results["raw_httpx"][measure]["median_ms"]
        over = {name: results[name][measure]["median_ms"] - floor for name in ways if name != "raw_httpx"}
        for name, overhead in over.items():
            results[name][f"{measure}_over_httpx_ms"] = round(overhead, 3)
            results[name][f"{measure}_over_httpx_p95_ms"] = summary([t - floor for t in times[name]])[
                "p95_ms"
            ]
        for name in ADAPTERS:
            ratio = over[name] / over["openai_sdk"] if over["openai_sdk"] > 0 else None
            results[name][f"{measure}_overhead_vs_sdk"] = None if ratio is None else round(ratio, 2)
        results[f"{measure}_overhead_vs_sdk"] = {
            name: results[name][f"{measure}_overhead_vs_sdk"] for name in ADAPTERS
        }
    results["fast_path_profile_percent"] = profile
    return results


PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LIBRARIES = (
    ("pricing (litellm)", f"{os.sep}litellm{os.sep}"),
    ("openai SDK", f"{os.sep}openai{os.sep}"),
    ("pydantic", f"{os.sep}pydantic"),
    ("httpx, httpcore", f"{os.sep}http"),
    ("h11", f"{os.sep}h11{os.sep}"),
)


def part_of(filename: str) -> str:
    """The part of the stack a profiled function's file belongs to."""
    if filename.startswith(PROJECT + os.sep):
        return "the adapter"
    if filename == "~":
        return "C functions (socket reads, json, locks)"
    return next((name for name, mark in LIBRARIES if mark in filename), "Python's standard library")


def fast_path_profile(url: str, calls: int) -> dict[str, float]:
    """Where a fast-path call's CPU goes: ``calls`` calls under cProfile timed by process
    time, each function's own time (``tottime``) summed by the part of the stack it belongs
    to (:func:`part_of`), as percentages of the whole. cProfile's own cost inflates
    every part several times over, so only the shares tell."""
    import cProfile
    import pstats

    from agentjournal.domain import UserMessage
    from agentjournal.infrastructure.models.litellm_model import LiteLLMModel

    model = LiteLLMModel("openai/gpt-4o-mini", api_base=url, api_key="unused")
    list(model.stream("", [UserMessage("hello there")], ()))
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    for _ in range(calls):
        list(model.stream("", [UserMessage("hello there")], ()))
    profile.disable()
    parts: dict[str, float] = {}
    for (filename, _, _), (_, _, own, _, _) in pstats.Stats(profile).stats.items():  # type: ignore[attr-defined]
        part = part_of(filename)
        parts[part] = parts.get(part, 0.0) + own
    total = sum(parts.values())
    return {
        part: round(100 * seconds / total, 1) for part, seconds in sorted(parts.items(), key=lambda p: -p[1])
    }


def resident_mib(pid: int | str = "self") -> float:
    """A process's resident memory (``VmRSS``), in MiB."""
    with open(f"/proc/{pid}/status") as status:
        found = re.search(r"VmRSS:\s+(\d+) kB", status.read())
    assert found, "no VmRSS in /proc (not Linux?)"
    return round(int(found.group(1)) / 1024, 1)


SendAndStream = Callable[[Any, str, str], tuple[float, float]]
"""``scripts/bench``'s ``_send_and_stream``: a turn through the API, as the milliseconds to
its first streamed event and to ``session.status_idle``."""


def first_turn(send_and_stream: SendAndStream, starts: int, warm_turns: int) -> dict[str, Any]:
    """``starts`` new servers, each on a store of its own holding one session: the seconds
    from starting the process to its line saying it listens, its first turn sent right
    after that line, then ``warm_turns`` more turns in the same session; and the server's
    resident memory at idle, after those turns."""
    import httpx

    from agentjournal.application import SessionService
    from agentjournal.domain import SessionConfig

    key = "bench-key"
    config = SessionConfig(
        model="scripted", system="", name="bench", tools=(), networking={"type": "unrestricted"}
    )
    listening, first, warm, idle = [], [], [], []
    with scripted_server() as model_url, tempfile.TemporaryDirectory() as folder:
        for start in range(starts):
            store = f"{folder}/first-{start}.db"
            service = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": store})
            session = f"sesn_{service.create_session(config).hex}"
            service.close()
            started = time.perf_counter()
            server = subprocess.Popen(
                [sys.executable, "-m", "agentjournal", "--store", store, "serve", "--port", "0",
                 "--api-base", model_url, "--model-provider", "openai"],
                env={**os.environ, "AGENTJOURNAL_API_KEYS": key, "OPENAI_API_KEY": "unused"},
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            try:
                assert server.stdout is not None
                url = server.stdout.readline().split()[-1]
                listening.append(time.perf_counter() - started)
                # Without TCP_NODELAY a request's body waits on the server's delayed ACK (40 ms).
                nodelay = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
                with httpx.Client(
                    base_url=url, headers={"x-api-key": key}, timeout=120, transport=nodelay
                ) as client:
                    first.append(send_and_stream(client, session, "the first turn")[1])
                    warm.extend(send_and_stream(client, session, f"turn {n}")[1] for n in range(warm_turns))
                idle.append(resident_mib(server.pid))
            finally:
                server.terminate()
                server.wait(timeout=30)
    return {
        "start_to_listening_s": round(statistics.median(listening), 3),
        "first_turn": summary(first),
        "warm_turn": summary(warm),
        "first_over_warm": round(statistics.median(first) / statistics.median(warm), 2),
        "serve_idle_rss_mib": statistics.median(idle),
    }


MEMORY = """
import json, sys
sys.path.insert(0, {scripts!r})
from bench_model import resident_mib
import agentjournal.infrastructure.server.app
from agentjournal.infrastructure.models import litellm_model
stages = {{"server_imports": resident_mib()}}
if {load!r}:
    litellm_model._litellm()
    stages["litellm_imported"] = resident_mib()
    litellm_model.warm_up()
    stages["after_one_call"] = resident_mib()
print(json.dumps(stages))
"""


def idle_memory() -> dict[str, float]:
    """Resident memory of new interpreters holding the server's modules: without litellm,
    with it imported, and after one model call through ``LiteLLMModel`` (its warm-up)."""
    scripts = os.path.dirname(os.path.abspath(__file__))
    stages: dict[str, float] = {}
    for load in (False, True):
        done = subprocess.run(
            [sys.executable, "-c", MEMORY.format(scripts=scripts, load=load)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        stages.update(json.loads(done.stdout.splitlines()[-1]))
    stages["litellm_import_mib"] = round(stages["litellm_imported"] - stages["server_imports"], 1)
    stages["first_call_mib"] = round(stages["after_one_call"] - stages["litellm_imported"], 1)
    return stages


def run(quick: bool, send_and_stream: SendAndStream) -> dict[str, Any]:
    """Every measure of this module, for ``scripts/bench --model-call``."""
    return {
        "model_call": model_call(30 if quick else 300),
        "first_turn": first_turn(send_and_stream, 1 if quick else 5, 5 if quick else 20),
        "memory": idle_memory(),
    }


if __name__ == "__main__":
    print(json.dumps(model_call(int(sys.argv[1]) if len(sys.argv) > 1 else 50), indent=2))
