"""A real server process against a hostile client (and a hostile model whose calls run in
a session): ids of the wrong kind, bodies and queries built to break it, races, floods,
and secrets it must keep. Every refusal is a clean 4xx in Anthropic's shape, and a
refused request records nothing."""

from __future__ import annotations

import httpx
import pytest

from agentjournal.infrastructure.models.scripted import Reply, ScriptedToolCall
from tests import serving
from tests.conftest import wait_until
from tests.serving import API_KEY
from tests.test_server_actions import WEATHER, until_idle
from tests.test_server_sessions import new_session

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

KEY = {"x-api-key": API_KEY}


@pytest.fixture
def http(api_server):  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=api_server.url, headers=KEY, timeout=30) as client:
        yield client


def catalog_ids(http: httpx.Client) -> tuple[str, str]:
    """The hex of a new agent's id and of a new environment's."""
    agent = http.post("/v1/agents", json={"name": "a", "model": "gpt-4o-mini"}).json()
    environment = http.post("/v1/environments", json={"name": "e", "config": {"type": "cloud"}}).json()
    return agent["id"].removeprefix("agent_"), environment["id"].removeprefix("env_")


def test_an_agents_or_environments_id_is_no_session_on_any_route(http, store):
    agent_hex, environment_hex = catalog_ids(http)
    for hex_id in (agent_hex, environment_hex):
        for session in (f"sesn_{hex_id}", hex_id):
            attempts = [
                http.get(f"/v1/sessions/{session}"),
                http.post(f"/v1/sessions/{session}", json={"title": "mine now"}),
                http.post(f"/v1/sessions/{session}/archive"),
                http.delete(f"/v1/sessions/{session}"),
                http.get(f"/v1/sessions/{session}/events"),
                http.get(f"/v1/sessions/{session}/events/stream"),
                http.post(f"/v1/sessions/{session}/events", json={"events": [{"type": "user.interrupt"}]}),
                *(http.get(f"/x-agentjournal/v1/sessions/{session}/{view}")
                  for view in ("state", "log", "verify", "export")),
                http.post(f"/x-agentjournal/v1/sessions/{session}/fork", json={}),
            ]  # fmt: skip
            for response in attempts:
                assert response.status_code == 404, (response.request.url, response.text)
                assert response.json()["error"]["type"] == "not_found_error"
    # Nothing was done to them through the session routes.
    environment = http.get(f"/v1/environments/env_{environment_hex}").json()
    assert environment["archived_at"] is None
    assert http.get(f"/v1/agents/agent_{agent_hex}").json()["version"] == 1
    # And the other way round: a session's id is no agent or environment.
    session_hex = new_session(store).removeprefix("sesn_")
    assert http.get(f"/v1/agents/agent_{session_hex}").status_code == 404
    assert http.get(f"/v1/environments/env_{session_hex}").status_code == 404


def posted(http: httpx.Client, path: str, body: bytes) -> httpx.Response:
    return http.post(path, content=body, headers={"content-type": "application/json"})


def test_bodies_nested_too_deep_or_not_utf8_are_refused_naming_the_problem(http, store):
    session_id = new_session(store)
    events = f"/v1/sessions/{session_id}/events"
    deep = 300  # msgspec decodes it; redacting and storing it would recurse near Python's limit
    schema = b'{"type": "object", "x": ' + b'{"a": ' * deep + b"1" + b"}" * deep + b"}"
    assert posted(http, events, b"[" * 100_000 + b"]" * 100_000).status_code == 400  # not an object
    refusals = [
        posted(http, events, b'{"events": [{"type": "user.interrupt", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}]}"),
        posted(http, "/v1/agents", b'{"name": "a", "model": "m", "tools": [{"type": "custom", "name": "t", '
                                   b'"input_schema": ' + schema + b"}]}"),
        posted(http, "/v1/environments", b'{"name": "e", "config": {"type": "cloud"}, "metadata": '
                                         + b"[" * 900 + b"]" * 900 + b"}"),
    ]  # fmt: skip
    for response in refusals:
        assert response.status_code == 400, response.text
        assert "nested" in response.json()["error"]["message"]
    not_utf8 = posted(http, events, b'{"events": [{"type": "user.message", "content": "\xff\xfe"}]}')
    assert not_utf8.status_code == 400
    assert "UTF-8" in not_utf8.json()["error"]["message"]
    assert http.get("/v1/agents").json()["data"] == []
    assert http.get(events).json()["data"] == []


def test_integers_the_log_cannot_hold_are_refused_naming_the_field_and_nothing_is_recorded(http, store):
    """The log's encoding holds integers from -2**63 to 2**64 - 1; anything else a client
    sends is a 400 naming where it was, before anything is recorded."""
    weather = {**serving.WEATHER, "input_schema": {"type": "object", "properties": {"n": {"maximum": 2**64}}}}
    toolset = {"type": "agent_toolset_20260401", "configs": [{"name": "bash", "timeout": -(2**63) - 1}]}
    refused = {
        "$.tools[0].input_schema.properties.n.maximum": ("/v1/agents", {"name": "a", "model": "m", "tools": [weather]}),
        "$.tools[0].configs[0].timeout": ("/v1/agents", {"name": "a", "model": "m", "tools": [toolset]}),
        "$.model.effort.budget": ("/v1/agents", {"name": "a", "model": {"id": "m", "effort": {"type": "high", "budget": 10**30}}}),
        "$.config.packages.pip[1]": ("/v1/environments", {"name": "e", "config": {"type": "cloud", "packages": {"pip": ["x", 2**64]}}}),
        '$.metadata["k 1"]': ("/v1/environments", {"name": "e", "config": {"type": "cloud"}, "metadata": {"k 1": 2**64}}),
    }  # fmt: skip
    for where, (path, body) in refused.items():
        response = http.post(path, json=body)
        assert response.status_code == 400, response.text
        assert where in response.json()["error"]["message"], (where, response.text)
    # JSON has no NaN or infinity, and a float it can write but a double cannot hold is refused.
    for number in (b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400"):
        tool = b'{"type": "custom", "name": "t", "input_schema": {"maximum": ' + number + b"}}"
        answer = posted(http, "/v1/agents", b'{"name": "a", "model": "m", "tools": [' + tool + b"]}")
        assert answer.status_code == 400, answer.text
    assert http.get("/v1/agents").json()["data"] == http.get("/v1/environments").json()["data"] == []

    agent = http.post("/v1/agents", json={"name": "a", "model": "m"}).json()
    assert http.post(f"/v1/agents/{agent['id']}", json={"tools": [weather]}).status_code == 400
    assert http.get(f"/v1/agents/{agent['id']}").json()["version"] == 1
    session_id = new_session(store)
    events = f"/v1/sessions/{session_id}/events"
    for path, body in (
        (f"/v1/sessions/{session_id}", {"title": "t", "metadata": {"k": 2**64}}),
        ("/v1/sessions", {"agent": agent["id"], "environment_id": "env_x", "metadata": {"k": 2**64}}),
        (events, {"events": [{"type": "user.custom_tool_result", "custom_tool_use_id": "x", "is_error": 2**64}]}),
    ):  # fmt: skip
        assert http.post(path, json=body).status_code == 400
    assert http.get(events).json()["data"] == []
    logged = http.get(f"/x-agentjournal/v1/sessions/{session_id}/log").json()["data"]
    assert [entry["type"] for entry in logged] == ["SessionStarted"]

    # The limits themselves are recorded, and read back as they were given.
    edges = {"type": "object", "properties": {"n": {"minimum": -(2**63), "maximum": 2**64 - 1}}}
    tool = {**serving.WEATHER, "input_schema": edges}
    kept = http.post("/v1/agents", json={"name": "b", "model": "m", "tools": [tool]})
    assert kept.status_code == 200, kept.text
    assert kept.json()["tools"][0]["input_schema"] == edges


def prompt(text: str) -> dict:
    return {"type": "user.message", "content": [{"type": "text", "text": text}]}


def test_a_send_is_checked_whole_and_one_refused_event_records_none_of_it(
    api_server, http, store, model_server
):
    session_id = new_session(store, custom_tools=(WEATHER,))
    events = f"/v1/sessions/{session_id}/events"
    other = new_session(store).removeprefix("sesn_")
    refused = {
        "events[1].custom_tool_use_id": [prompt("one"), {"type": "user.custom_tool_result",
                                                         "custom_tool_use_id": f"sevt_{other}{'0' * 12}"}],
        "events[3]: session": [prompt("one"), {"type": "user.interrupt"}, prompt("two"), prompt("three")],
        "events[0]: session": [{"type": "user.interrupt"}, prompt("one")],
        "events[1].content": [prompt("one"), prompt(" ")],
        "events[0].content is over 1,000,000 characters": [prompt("x" * 1_000_001)],
        "$.events": [{"type": "user.interrupt"}] * 131,
    }  # fmt: skip
    for where, sent in refused.items():
        response = http.post(events, json={"events": sent})
        assert response.status_code in (400, 409), response.text
        assert where in response.json()["error"]["message"]
        assert http.get(events).json()["data"] == []
    assert model_server.requests == []

    # A paused turn: answering its one call twice in one send refuses both answers.
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("get_weather", {"city": "Rome"})]), Reply(text="Warm.")
    )
    assert http.post(events, json={"events": [prompt("Weather in Rome?")]}).status_code == 200
    use = next(e for e in until_idle(api_server.client(), session_id) if e.type == "agent.custom_tool_use")
    answer = {"type": "user.custom_tool_result", "custom_tool_use_id": use.id, "content": "warm"}
    twice = http.post(events, json={"events": [answer, answer]})
    assert twice.status_code == 400 and "events[1]" in twice.json()["error"]["message"]
    listed = [e["type"] for e in http.get(events).json()["data"]]
    assert "user.custom_tool_result" not in listed and listed[-1] == "session.status_idle"
    # An answer that continues the paused turn, then a prompt: the prompt would find the
    # turn running, so neither is recorded; the answer alone is.
    busy = http.post(events, json={"events": [answer, prompt("and Oslo?")]})
    assert busy.status_code == 409 and "events[1]" in busy.json()["error"]["message"]
    assert http.post(events, json={"events": [answer]}).status_code == 200


def test_every_numeric_query_parameter_out_of_range_or_malformed_is_a_400_in_the_apis_shape(http, store):
    session_id = new_session(store)
    agent_id = http.post("/v1/agents", json={"name": "a", "model": "m"}).json()["id"]
    x = f"/x-agentjournal/v1/sessions/{session_id}"
    numbers = {
        "/v1/sessions": ("limit", "agent_version"),
        f"/v1/sessions/{session_id}/events": ("limit",),
        "/v1/agents": ("limit",),
        f"/v1/agents/{agent_id}": ("version",),
        f"/v1/agents/{agent_id}/versions": ("limit",),
        "/v1/environments": ("limit",),
        "/x-agentjournal/v1/sessions": ("limit", "offset"),
        f"{x}/state": ("version",),
        f"{x}/turns": ("version",),
        f"{x}/files": ("version",),
        f"{x}/log/window": ("after", "limit"),
    }
    # Past the store's integers, below every range, and what Python's int() would read anyway.
    malformed = (
        str(2**63),
        str(2**64),
        "-1",
        "-" + "9" * 5000,
        "\u0661\u0662",
        "1_0",
        " 12",
        "+3",
        "1e3",
        "0x10",
        "",
    )
    for path, names in numbers.items():
        for name in names:
            for given in malformed:
                # agent_version is read only with an agent_id.
                answer = http.get(path, params={name: given, "agent_id": agent_id})
                assert answer.status_code == 400, (path, name, given, answer.text)
                error = answer.json()["error"]
                assert error["type"] == "invalid_request_error" and f"'{name}'" in error["message"]
                assert len(error["message"]) < 300
    # Times that UTC cannot express, and listing cursors holding them.
    from agentjournal.application.paging import encode_cursor

    times = {"/v1/sessions": ("created_at[gt]", "created_at[lte]"), "/v1/agents": ("created_at[gte]",),
             f"/v1/sessions/{session_id}/events": ("created_at[gt]", "created_at[lt]")}  # fmt: skip
    for path, names in times.items():
        for name in names:
            for given in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
                answer = http.get(path, params={name: given})
                assert answer.status_code == 400 and name in answer.json()["error"]["message"], answer.text
    for path in ("/v1/sessions", "/v1/agents", "/v1/environments"):
        answer = http.get(path, params={"page": encode_cursor("0001-01-01T00:00:00+14:00", session_id[5:])})
        assert answer.status_code == 400 and "page" in answer.json()["error"]["message"], answer.text

    # The largest version the store holds is a version like any other: there is none such.
    last = str(2**63 - 1)
    for path in (f"{x}/state", f"{x}/turns", f"{x}/files", f"/v1/agents/{agent_id}"):
        assert http.get(path, params={"version": last}).status_code == 404
    window = http.get(f"{x}/log/window", params={"after": last, "limit": "1000"})
    assert window.status_code == 200 and window.json() == {"data": [], "version": 1}


def test_versions_past_the_stores_integers_and_times_without_an_offset_are_answered(
    api_server, http, store, model_server
):
    session_id = new_session(store)
    fork = f"/x-agentjournal/v1/sessions/{session_id}/fork"
    forked = http.post(fork, json={"version": 2**63})
    assert forked.status_code == 404 and "has no event" in forked.json()["error"]["message"]
    forked = http.post(fork, json={"version": 2**70})  # no integer the log holds
    assert forked.status_code == 400 and "$.version" in forked.json()["error"]["message"]
    model_server.enqueue(Reply(text="Hi."))
    http.post(f"/v1/sessions/{session_id}/events", json={"events": [prompt("Hello")]})
    everything = [e.id for e in until_idle(api_server.client(), session_id, extra_headers={
        "Last-Event-ID": f"sevt_{session_id.removeprefix('sesn_')}{'0' * 12}"})]  # fmt: skip
    # A time without an offset is UTC, on every list.
    for path, ids in ((f"/v1/sessions/{session_id}/events", everything), ("/v1/sessions", [session_id])):
        later = http.get(path, params={"created_at[gt]": "2999-01-01T00:00:00"})
        earlier = http.get(path, params={"created_at[lte]": "2999-01-01"})
        assert later.status_code == earlier.status_code == 200, (later.text, earlier.text)
        assert later.json()["data"] == []
        assert [e["id"] for e in earlier.json()["data"]] == ids


def test_the_servers_keys_and_the_model_key_reach_no_tool_no_model_no_log_and_no_response(
    model_server, store
):
    """A session made over the API runs its tools on the host: a hostile model reads the
    environment, echoes every secret it can name and asks for the store's own file; a
    client pastes a key in its prompt."""
    import sqlite3

    from tests.conftest import TEST_KEY
    from tests.serving import MODEL_KEY_ENV, running_server

    keys = ("first-server-key-AAAA1111", "second-server-key-BBBB2222")
    secrets = (*keys, TEST_KEY)
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("bash", {"command": "env"}),
                          ScriptedToolCall("bash", {"command": f"echo {' '.join(secrets)}"}),
                          ScriptedToolCall("read", {"file_path": str(store)}),
                          ScriptedToolCall("read", {"file_path": "../../../../../../proc/self/environ"})]),
        Reply(text="Done."),
    )  # fmt: skip
    with running_server(model_server.base_url, store, keys=",".join(keys)) as server:
        client = server.client(key=keys[1])
        agent = client.beta.agents.create(
            name="a", model="gpt-4o-mini", tools=[{"type": "agent_toolset_20260401"}]
        )
        environment = client.beta.environments.create(name="e", config={"type": "cloud"})
        session = client.beta.sessions.create(agent=agent.id, environment_id=environment.id)
        client.beta.sessions.events.send(session.id, events=[prompt(f"My key is {keys[0]}. Run env.")])
        until_idle(client, session.id, extra_headers={"Last-Event-ID": f"sevt_{session.id[5:]}{'0' * 12}"})
        results = [e for e in client.beta.sessions.events.list(session.id) if e.type == "agent.tool_result"]
        environ = results[0].content[0].text
        assert all("is outside the work folder" in r.content[0].text for r in results[2:])
        assert "AGENTJOURNAL_API_KEYS" not in environ and MODEL_KEY_ENV not in environ
        responses = "".join(
            httpx.get(f"{server.url}{path}", headers={"x-api-key": keys[0]}).text
            for path in (
                f"/v1/sessions/{session.id}/events",
                f"/x-agentjournal/v1/sessions/{session.id}/export",
            )
        )
    stored = b"".join(row[0] for row in sqlite3.connect(store).execute("SELECT state FROM stored_events"))
    seen_by_model = str(model_server.requests)
    for secret in secrets:
        assert secret not in environ
        assert secret not in responses and secret not in seen_by_model
        assert secret.encode() not in stored
    assert "[redacted:process-env:AGENTJOURNAL_API_KEYS[0]]" in responses


def test_without_keys_only_loopback_names_and_same_origin_pages_are_served(model_server, store):
    """A server without keys listens on the loopback only, but a web page can still reach
    it: through its own name pointed at 127.0.0.1 (DNS rebinding), or by posting to it from
    another origin. Neither is served."""
    from tests.serving import running_server

    with running_server(model_server.base_url, store, keys="", extra=("--no-auth",)) as server:
        port = server.url.rsplit(":", 1)[1]
        agents = f"{server.url}/v1/agents"
        agent = {"name": "a", "model": "m"}
        for host in (f"evil.example:{port}", f"127.0.0.1.evil.example:{port}", "evil.example", "[::1"):
            refused = httpx.get(agents, headers={"Host": host})
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["type"] == "permission_error"
        for origin in ("http://evil.example", f"http://evil.example:{port}", "null", "http://[::1"):
            refused = httpx.post(agents, json=agent, headers={"Origin": origin})
            assert refused.status_code == 403, refused.text
        assert httpx.get(agents).json()["data"] == []
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost"):
            assert httpx.get(agents, headers={"Host": host}).status_code == 200
        same_origin = httpx.post(agents, json=agent, headers={"Origin": server.url})
        assert same_origin.status_code == 200
    with running_server(model_server.base_url, store) as server:  # a key is proof enough
        assert (
            httpx.get(f"{server.url}/v1/agents", headers={**KEY, "Host": "agents.example"}).status_code == 200
        )


@pytest.mark.parametrize(
    "framing",
    [
        [b"Transfer-Encoding: chunked", b"Content-Length: 5"],
        [b"Content-Length: 5", b"Transfer-Encoding: chunked"],
        [b"Content-Length: 0", b"transfer-encoding: CHUNKED"],
    ],
)
def test_a_request_framed_both_chunked_and_by_length_is_refused_and_its_connection_closed(
    api_server, http, framing
):
    """Read as chunked, the body below ends early and the bytes after it are a request of
    their own; a proxy in front that reads Content-Length sees one request (request
    smuggling). RFC 9112 section 6.1: refuse it, or close the connection after it."""
    import socket

    body = b'{"name": "first", "model": "m"}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    smuggled = b'{"name": "smuggled", "model": "m"}'
    head = [b"POST /v1/agents HTTP/1.1", b"Host: x", b"x-api-key: " + API_KEY.encode(),
            b"Content-Type: application/json", *framing]  # fmt: skip
    second = [b"POST /v1/agents HTTP/1.1", b"Host: x", b"x-api-key: " + API_KEY.encode(),
              b"Content-Type: application/json", b"Content-Length: %d" % len(smuggled)]  # fmt: skip
    request = b"\r\n".join(head) + b"\r\n\r\n" + chunked + b"\r\n".join(second) + b"\r\n\r\n" + smuggled
    host, port = api_server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):  # until the server closes the connection
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert answer.count(b"HTTP/1.1 ") == 1 and b"connection: close" in answer.lower(), answer
    assert http.get("/v1/agents").json()["data"] == []


def test_a_client_too_slow_to_send_its_request_is_cut_off(model_server, store):
    """Without deadlines a client holds a connection (and a file descriptor) for ever by
    sending nothing, or a few bytes of headers, or a body that never ends: enough such
    clients, without any key, and the server has none left for anyone else."""
    import socket
    import time

    from tests.serving import running_server

    session_id = new_session(store)
    with running_server(model_server.base_url, store, extra=("--client-timeout", "1")) as server:
        address = server.url.removeprefix("http://").rsplit(":", 1)

        def connection() -> socket.socket:
            sock = socket.create_connection((address[0], int(address[1])))
            sock.settimeout(10)
            return sock

        silent, headers, body = connection(), connection(), connection()
        headers.sendall(b"GET /v1/agents HTTP/1.1\r\nHost: x\r\n")
        body.sendall(f"POST /v1/sessions/{session_id}/events HTTP/1.1\r\nHost: x\r\nx-api-key: {API_KEY}\r\n"
                     "content-type: application/json\r\ncontent-length: 100\r\n\r\n{".encode())  # fmt: skip
        started = time.monotonic()
        assert silent.recv(100) == b"" and headers.recv(100) == b""
        answer = b""
        while chunk := body.recv(1000):  # the answer's head and body may come apart
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408") and b"request body" in answer, answer
        assert time.monotonic() - started < 5
        # The deadline is for sending a request: a stream may stay open far longer.
        client = server.client()
        model_server.enqueue(Reply(text="Still here."))
        with client.beta.sessions.events.stream(session_id) as stream:
            time.sleep(2.5)
            client.beta.sessions.events.send(session_id, events=[prompt("Are you there?")])
            texts = [e.content[0].text for e in _until_idle(stream) if e.type == "agent.message"]
        assert texts == ["Still here."]


def _until_idle(stream):  # type: ignore[no-untyped-def]
    for event in stream:
        yield event
        if event.type == "session.status_idle":
            return


def test_streams_leave_nothing_behind_and_end_with_their_session(api_server, http, store):
    """Hundreds of streams opened and dropped (some before reading a byte) leave the server
    with the connections it had, and no thread per stream; a stream ends once its session is
    terminated, as nothing more can happen to it, and one on a deleted session is a 404."""
    import os
    import socket

    session_id = new_session(store)
    pid = api_server.process.pid

    def threads() -> int:
        return len(os.listdir(f"/proc/{pid}/task"))

    def sockets() -> int:
        """The server's open sockets: its listening one, and one per connection."""
        found = 0
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                found += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
            except OSError:  # closed meanwhile
                pass
        return found

    host, port = api_server.url.removeprefix("http://").rsplit(":", 1)
    request = (f"GET /v1/sessions/{session_id}/events/stream HTTP/1.1\r\nHost: x\r\n"
               f"x-api-key: {API_KEY}\r\n\r\n").encode()  # fmt: skip
    assert http.get(f"/v1/sessions/{session_id}/events").status_code == 200  # the server is warm
    before = (threads(), sockets())
    for _ in range(3):
        streams = [socket.create_connection((host, int(port))) for _ in range(100)]
        for number, sock in enumerate(streams):
            sock.sendall(request)
            if number % 2:
                assert sock.recv(15) == b"HTTP/1.1 200 OK"
        for sock in streams[::2]:  # the others are answered too; a peek leaves their bytes unread
            assert sock.recv(15, socket.MSG_PEEK) == b"HTTP/1.1 200 OK"
        assert threads() < before[0] + 40  # a pool's threads at most, not one per stream
        for sock in streams:
            sock.close()
    wait_until(lambda: sockets() <= before[1], "the server to close the dropped streams' connections")
    assert threads() < before[0] + 40

    stream = api_server.client().beta.sessions.events.stream(session_id)
    assert http.delete(f"/v1/sessions/{session_id}").status_code == 200
    assert [e.type for e in stream] == ["session.status_terminated"]  # and then the stream ends
    assert http.get(f"/v1/sessions/{session_id}/events/stream").status_code == 404


def test_racing_prompts_start_one_turn_and_a_delete_stops_it_for_good(api_server, http, store, model_server):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from agentjournal.application import SessionService

    session_id = new_session(store)
    model_server.enqueue(*[Reply(text="too late", hold=True) for _ in range(10)])
    ready = threading.Barrier(10)

    def send(_: int) -> int:
        ready.wait()
        return http.post(f"/v1/sessions/{session_id}/events", json={"events": [prompt("go")]}).status_code

    with ThreadPoolExecutor(10) as pool:
        answers = sorted(pool.map(send, range(10)))
    assert answers == [200] + [409] * 9
    model_server.wait_for_requests(1)  # the turn is mid-reply until released
    assert http.delete(f"/v1/sessions/{session_id}").status_code == 200
    model_server.release()  # the model answers the deleted session's turn
    api_server.stop()  # which ends before the server does
    service = SessionService({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(store)})
    try:
        logged = [e.type for e in service.audit_log(service.find_session(session_id.removeprefix("sesn_")))]
    finally:
        service.close()
    assert logged.count("UserMessageAdded") == logged.count("TurnStarted") == 1
    assert logged[-3:] == ["TurnCompleted", "SessionTerminated", "SessionDeleted"]
    assert "AssistantMessageAdded" not in logged and len(model_server.requests) == 1


def test_every_route_and_odd_path_needs_a_key(api_server, store):
    session_id = new_session(store)
    paths = [
        "/", "/v1/sessions", "//v1/sessions", "/v1/sessions/", "/v1//sessions", "/%76%31/sessions",
        f"/v1/sessions/{session_id}", f"/v1/sessions/{session_id}/events/stream",
        f"/x-agentjournal/v1/sessions/{session_id}/export", "/x-agentjournal/../v1/sessions",
        "/v1/agents", "/v1/environments", "/docs", "/openapi.json", "/static/../../etc/passwd",
    ]  # fmt: skip
    with httpx.Client(base_url=api_server.url) as client:
        for method in ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"):
            for path in paths:
                for headers in ({}, {"x-api-key": API_KEY + "x"}, {"Authorization": f"Basic {API_KEY}"},
                                {"x-api-key": ""}, {"Authorization": "Bearer"}):  # fmt: skip
                    answer = client.request(method, path, headers=headers)
                    if path == "/" and method in ("GET", "HEAD"):
                        # The session browser's page: static, no data, loaded before a key exists.
                        assert answer.status_code == 200 and session_id[5:] not in answer.text
                        continue
                    assert answer.status_code == 401, (method, path, headers, answer.text)
                    if method != "HEAD":
                        assert answer.json()["error"]["type"] == "authentication_error"
                        assert API_KEY not in answer.text


def test_a_delete_or_interrupt_wins_over_a_turn_saving_at_the_same_moment(http, store, model_server):
    """A turn running tools saves every few milliseconds; a delete or an interrupt that
    loses a save to it is made again on what the turn recorded, not answered with a 409."""
    import random
    import time

    from agentjournal.infrastructure.models.scripted import ScriptedToolCall

    busy = [Reply(tool_calls=[ScriptedToolCall("execute_command", {"command": "true"})])] * 8
    refused = []
    for attempt in range(24):
        session_id = new_session(store, tools=("execute_command",))
        model_server.script.clear()
        model_server.enqueue(*busy, Reply(text="Done."))
        http.post(f"/v1/sessions/{session_id}/events", json={"events": [prompt("Work.")]})
        time.sleep(random.uniform(0.05, 0.5))
        if attempt % 2:
            answer = http.delete(f"/v1/sessions/{session_id}")
        else:
            answer = http.post(
                f"/v1/sessions/{session_id}/events", json={"events": [{"type": "user.interrupt"}]}
            )
        if answer.status_code != 200 and "no turn in progress" not in answer.text:  # it may have ended
            refused.append(answer.text)
    assert refused == []


def test_malformed_huge_or_foreign_ids_are_refused_cleanly(http, store):
    session_id = new_session(store)
    other = new_session(store).removeprefix("sesn_")
    for given in ("sesn_" + "g" * 32, "sesn_" + "0" * 31, "x" * 4000, "sesn_%00", "..", "sesn_" + "0" * 32):
        for path in (f"/v1/sessions/{given}", f"/v1/agents/{given}", f"/v1/environments/{given}"):
            answer = http.get(path)
            assert answer.status_code == 404, (path, answer.text)
    events = f"/v1/sessions/{session_id}/events"
    foreign = f"sevt_{other}{'0' * 9}1{'0' * 2}"
    for answer in (
        http.get(events, params={"page": foreign}),
        http.get(f"{events}/stream", headers={"Last-Event-ID": foreign}),
        http.get(f"{events}/stream", headers={"Last-Event-ID": "sevt_" + "f" * 4000}),
        http.post(
            events,
            json={"events": [{"type": "user.tool_confirmation", "tool_use_id": foreign, "result": "allow"}]},
        ),  # fmt: skip
    ):
        assert answer.status_code == 400, answer.text
        assert "is not the id of an event of session" in answer.json()["error"]["message"]


def test_a_pause_names_the_calls_it_waits_on_whatever_ids_the_model_gave_them(
    api_server, store, model_server
):
    """A pause records the ids of the calls it waits on separated by spaces: a model that
    puts spaces in its call ids must not make it name calls that do not exist."""
    session_id = new_session(store, custom_tools=(WEATHER,))
    model_server.enqueue(
        Reply(tool_calls=[ScriptedToolCall("get_weather", {"city": "Oslo"}, id="call one"),
                          ScriptedToolCall("get_weather", {"city": "Rome"}, id=" call\ttwo ")]),
    )  # fmt: skip
    client = api_server.client()
    client.beta.sessions.events.send(session_id, events=[prompt("Weather?")])
    seen = until_idle(client, session_id, extra_headers={"Last-Event-ID": f"sevt_{session_id[5:]}{'0' * 12}"})
    uses = [e.id for e in seen if e.type == "agent.custom_tool_use"]
    assert len(uses) == 2 and seen[-1].stop_reason.event_ids == uses
