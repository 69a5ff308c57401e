"""``limited`` networking: a real Squid started by the engine, real sandboxes, real clients.

From inside a confined host sandbox (a network namespace of its own whose one way out is
the egress proxy's socket) and a Docker sandbox (an internal network it shares with its
proxy's container alone), curl and Python's urllib reach the allowed hosts over plain
HTTP and through a CONNECT tunnel, a host or port not on the list is refused with a
message naming it, and a connection that leaves out the proxy reaches nothing. The web
servers listen on an address of this machine other than the loopback, which a sandbox
with the host's network would reach directly: only the proxy makes them reachable.
"""

from __future__ import annotations

import shlex
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from agentjournal.application import ConfigError, ManagedConfig
from agentjournal.domain.egress import HostRule, parse_host_rule, with_servers
from agentjournal.infrastructure.compute import bubblewrap
from agentjournal.infrastructure.compute.confined import ConfinedHostCompute
from agentjournal.infrastructure.compute.egress_proxy import EgressProxy, rules_for
from agentjournal.infrastructure.models.scripted import ScriptedToolCall
from tests.attacks import wait_until
from tests.serving import running_server
from tests.test_server_confinement import attack, new_session, text

pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.skipif(bubblewrap.unavailable() is not None, reason="bubblewrap cannot run here"),
]

NOT_ALLOWED = "not allowed by this session's networking"

GET = """
import sys, urllib.error, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=30).read().decode(), end="")
except urllib.error.HTTPError as e:
    sys.exit(f"{e.code} {e.read().decode()}")
"""
"""Fetches a URL as most tools do: through the proxy the environment names."""

TUNNEL = """
import http.client, os, sys, urllib.parse
proxy, target = urllib.parse.urlsplit(os.environ["HTTP_PROXY"]), urllib.parse.urlsplit(sys.argv[1])
connection = http.client.HTTPConnection(proxy.hostname, proxy.port, timeout=30)
connection.set_tunnel(target.hostname, target.port)
connection.request("GET", target.path)
print(connection.getresponse().read().decode(), end="")
"""
"""Fetches a URL through a CONNECT tunnel, as an HTTPS client does."""

DIRECT = """
import socket, sys, urllib.parse
target = urllib.parse.urlsplit(sys.argv[1])
socket.create_connection((target.hostname, target.port), timeout=10).sendall(b"GET /plain HTTP/1.0\\r\\n\\r\\n")
"""
"""Connects to a URL's host and port itself, leaving out the proxy."""


def python(script: str, url: str) -> str:
    return f"python3 -c {shlex.quote(script)} {shlex.quote(url)}"


def outward_address() -> str:
    """An address of this machine other than the loopback: the one its default route
    leaves from (a UDP socket's connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.123", 9))
        except OSError:
            pytest.skip("this machine has no route off the loopback")
        address: str = probe.getsockname()[0]
    if address.startswith("127."):
        pytest.skip("this machine has no address off the loopback")
    return address


@pytest.fixture(params=["host", pytest.param("docker", marks=[pytest.mark.docker, pytest.mark.slow])])
def limited(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Sandboxes of ``limited`` networking allowing the given hosts: on the confined host,
    then in Docker."""
    if request.param == "host":
        made: Callable[..., Any] = request.getfixturevalue("confined_limited")
        return made
    sandbox = request.getfixturevalue("sandbox")

    def make(*hosts: str, **flags: bool) -> Any:
        return sandbox(networking={"type": "limited", "allowed_hosts": list(hosts), **flags})

    return make


@pytest.fixture
def confined_limited(config: ManagedConfig, tmp_path: Path) -> Iterator[Callable[..., ConfinedHostCompute]]:
    """Confined host computes of ``limited`` networking allowing the given hosts, each
    attached to a session of its own; their proxies are stopped at the end."""
    made: list[ConfinedHostCompute] = []

    def make(*hosts: str, **flags: bool) -> ConfinedHostCompute:
        networking = {"type": "limited", "allowed_hosts": list(hosts), **flags}
        folder = tmp_path / f"work-{len(made)}"
        changed = msgspec.structs.replace(config, networking=networking, working_dir=str(folder))
        compute = ConfinedHostCompute.from_config(changed)
        compute.attach(uuid.uuid4(), None)
        made.append(compute)
        return compute

    yield make
    for compute in made:
        compute.close()


def run(compute: Any, command: str) -> str:
    result = compute.execute(command, 60)
    assert not result.timed_out
    return result.output


def test_an_allowed_host_is_reached_over_http_and_through_a_tunnel(limited, serve, requested) -> None:  # type: ignore[no-untyped-def]
    base = serve(outward_address())
    compute = limited(base.removeprefix("http://"))
    assert run(compute, python(GET, f"{base}/plain")) == "just text"
    assert run(compute, python(TUNNEL, f"{base}/plain")) == "just text"
    assert requested == ["/plain"] * 2


def test_a_host_or_port_not_on_the_list_is_refused_with_its_name(limited, serve, requested) -> None:  # type: ignore[no-untyped-def]
    address = outward_address()
    allowed, other_port = serve(address), serve(address)
    compute = limited(allowed.removeprefix("http://"))
    refused = compute.execute(python(GET, f"{other_port}/plain"), 60)
    target = other_port.removeprefix("http://")
    assert refused.exit_code != 0 and "403 <!DOCTYPE html>" in refused.output
    assert f"the host {address}" in refused.output and NOT_ALLOWED in refused.output
    assert f"{NOT_ALLOWED} (limited): {target}" in refused.output
    tunnel = compute.execute(python(TUNNEL, f"{other_port}/plain"), 60)
    assert tunnel.exit_code != 0
    assert "403" in tunnel.output and f"{NOT_ALLOWED} (limited): {target}" in tunnel.output
    assert requested == []


def test_a_connection_around_the_proxy_reaches_nothing(limited, serve, requested) -> None:  # type: ignore[no-untyped-def]
    base = serve(outward_address())
    compute = limited(base.removeprefix("http://"))
    direct = compute.execute(python(DIRECT, base), 60)
    assert direct.exit_code != 0
    assert requested == []


def test_an_ip_literal_with_a_port_allows_that_port_alone(limited, serve, requested) -> None:  # type: ignore[no-untyped-def]
    address = outward_address()
    first, second = serve(address), serve(address)
    compute = limited(first.removeprefix("http://"))
    assert run(compute, python(GET, f"{first}/plain")) == "just text"
    assert NOT_ALLOWED in run(compute, python(GET, f"{second}/plain"))
    anyport = limited(address)
    assert run(anyport, python(GET, f"{second}/plain")) == "just text"
    assert requested == ["/plain", "/plain"]


def test_a_leading_star_allows_subdomains_and_not_the_domain_itself(confined_limited) -> None:  # type: ignore[no-untyped-def]
    compute = confined_limited("*.example.test")
    for name in ("api.example.test", "a.b.example.test"):
        assert NOT_ALLOWED not in run(compute, f"curl -sS --max-time 30 http://{name}/")
    for name in ("example.test", "api.example.test.evil.test", "apiexample.test"):
        assert NOT_ALLOWED in run(compute, f"curl -sS http://{name}/"), name


def test_limited_allowing_nothing_still_has_no_network_and_no_proxy(config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    networking = {"type": "limited", "allowed_hosts": []}
    changed = msgspec.structs.replace(config, networking=networking, working_dir=str(tmp_path / "w"))
    compute = ConfinedHostCompute.from_config(changed)
    assert compute.egress is None and not compute.network


def test_allow_mcp_servers_opens_the_agents_servers_and_nothing_more() -> None:
    networking = {"type": "limited", "allowed_hosts": ["a.example"], "allow_mcp_servers": True}
    opened = with_servers(networking, ["https://mcp.example/mcp", "http://192.0.2.9:8123/sse"])
    assert rules_for(opened) == (
        HostRule("a.example"),
        HostRule("mcp.example", 443),
        HostRule("192.0.2.9", 8123, literal=True),
    )
    closed = {**networking, "allow_mcp_servers": False}
    assert with_servers(closed, ["https://mcp.example/"]) == closed


@pytest.mark.parametrize(
    ("entry", "rule"),
    [
        ("API.Example.com", HostRule("api.example.com")),
        ("*.example.com:8443", HostRule("example.com", 8443, subdomains=True)),
        ("192.0.2.7:80", HostRule("192.0.2.7", 80, literal=True)),
        ("[2001:db8::7]", HostRule("[2001:db8::7]", literal=True)),
    ],
)
def test_an_allowed_hosts_entry_is_read_exactly(entry: str, rule: HostRule) -> None:
    assert parse_host_rule(entry) == rule


@pytest.mark.parametrize(
    "entry",
    [
        "https://example.com/",
        "user@example.com",
        "*.com",
        "exa*mple.com",
        "2001:db8::7",
        "a.com:0",
        "*.10.0.0.1",
    ],
)
def test_an_entry_that_is_not_a_host_is_refused_where_the_config_is_made(
    config: ManagedConfig, entry: str
) -> None:
    with pytest.raises(ConfigError, match="allowed_hosts"):
        ManagedConfig(model=config.model, networking={"type": "limited", "allowed_hosts": [entry]})


@pytest.fixture
def server(model_server: Any, store: Path) -> Iterator[Any]:
    with running_server(model_server.base_url, store) as s:
        yield s


def test_the_official_sdk_runs_a_limited_session_whose_bash_reaches_only_its_host(  # type: ignore[no-untyped-def]
    server, model_server, serve, requested
) -> None:
    address = outward_address()
    allowed, other = serve(address), serve(address)
    networking = {"type": "limited", "allowed_hosts": [allowed.removeprefix("http://")]}
    session_id = new_session(server, networking)
    fetch = "import urllib.request as u; print(u.urlopen('{}/plain').read().decode())"
    reached, refused = attack(
        server,
        model_server,
        session_id,
        ScriptedToolCall("bash", {"command": f"curl -sS {allowed}/plain"}),
        ScriptedToolCall("bash", {"command": f'python3 -c "{fetch.format(other)}"'}),
    )
    assert "just text" in text(reached)
    assert f"{NOT_ALLOWED} (limited): {other.removeprefix('http://')}" in text(refused)
    assert requested == ["/plain"]


def test_the_server_refuses_an_environment_whose_allowed_hosts_are_not_hosts(server) -> None:  # type: ignore[no-untyped-def]
    import anthropic

    client = server.client()
    config = {"type": "cloud", "networking": {"type": "limited", "allowed_hosts": ["https://example.com/x"]}}
    with pytest.raises(anthropic.BadRequestError, match="allowed_hosts"):
        client.beta.environments.create(name="e", config=config)  # type: ignore[arg-type]


@pytest.mark.docker
@pytest.mark.slow
def test_a_docker_sandboxs_proxy_network_and_folder_go_with_it(engine, sessions, serve) -> None:  # type: ignore[no-untyped-def]
    from agentjournal.domain import ComputeBinding
    from agentjournal.infrastructure.compute.docker_egress import EGRESS_LABEL, FOLDER_LABEL
    from agentjournal.infrastructure.compute.docker_sandbox import DockerCompute

    base = serve(outward_address())
    compute = DockerCompute(client=engine, networking={"type": "limited", "allowed_hosts": [base[7:]]})
    sessions.append(uuid.uuid4())
    binding = compute.attach(sessions[-1], None)
    name = compute.container.name
    selector = {"label": f"{EGRESS_LABEL}={name}"}
    (proxy,) = engine.containers.list(filters=selector)
    assert len(engine.networks.list(filters=selector)) == 1
    folder = Path(proxy.labels[FOLDER_LABEL])
    assert folder.is_dir()
    compute.release(ComputeBinding("docker", binding.reference))
    assert engine.containers.list(all=True, filters=selector) == []
    assert engine.networks.list(filters=selector) == []
    assert not folder.exists()


def test_allow_package_managers_opens_the_indexes_pip_is_configured_with(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from agentjournal.infrastructure.compute import package_indexes

    settings = tmp_path / "pip.conf"
    settings.write_text("[global]\nindex-url = https://mirror.example.org/simple\n")
    monkeypatch.setattr(package_indexes, "PIP_CONFIG_FILES", ())
    monkeypatch.setenv("PIP_CONFIG_FILE", str(settings))
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "https://extra.example.net:8443/simple")
    rules = rules_for({"type": "limited", "allow_package_managers": True})
    assert HostRule("mirror.example.org") in rules and HostRule("extra.example.net") in rules
    assert HostRule("pypi.org") not in rules  # a configured index replaces PyPI
    monkeypatch.delenv("PIP_CONFIG_FILE")
    monkeypatch.delenv("PIP_EXTRA_INDEX_URL")
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    assert {HostRule("pypi.org"), HostRule("files.pythonhosted.org")} <= set(
        rules_for({"type": "limited", "allow_package_managers": True})
    )


KILLED_ENGINE = """
from agentjournal.infrastructure.compute.egress_proxy import EgressProxy
from agentjournal.domain.egress import host_rules
proxy = EgressProxy(host_rules(["192.0.2.1"])).start()
print(proxy.squid_pid, proxy.folder, flush=True)
input()
"""


def test_the_proxy_dies_with_an_engine_killed_by_sigkill_and_its_folder_is_swept() -> None:
    engine = subprocess.Popen(
        [sys.executable, "-c", KILLED_ENGINE], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert engine.stdout is not None
    pid, folder = engine.stdout.readline().decode().split()
    assert Path(f"/proc/{pid}").exists() and Path(folder, "squid.conf").is_file()
    engine.send_signal(signal.SIGKILL)
    engine.wait()

    def squid_gone() -> bool:
        try:
            return Path(f"/proc/{pid}/status").read_text().find("State:\tZ") >= 0
        except FileNotFoundError:
            return True

    assert wait_until(squid_gone, 30), "squid outlived its engine"
    proxy = EgressProxy(())
    try:
        proxy.start()
        assert not Path(folder).exists()
    finally:
        proxy.stop()


def test_the_python_api_runs_a_limited_session_whose_bash_reaches_only_its_host(  # type: ignore[no-untyped-def]
    config, model_server, serve, requested, tmp_path
) -> None:
    from agentjournal.application import ManagedAgent
    from tests.test_confinement import TOOLS
    from tests.test_confinement import attack as api_attack

    address = outward_address()
    allowed, other = serve(address), serve(address)
    networking = {"type": "limited", "allowed_hosts": [allowed.removeprefix("http://")]}
    changed = msgspec.structs.replace(config, tools=TOOLS, networking=networking)
    agent = ManagedAgent(config=changed, store=tmp_path / "sessions.db")
    reached, refused = api_attack(
        agent,
        model_server,
        ScriptedToolCall("bash", {"command": python(TUNNEL, f"{allowed}/plain")}),
        ScriptedToolCall("bash", {"command": python(TUNNEL, f"{other}/plain")}),
    )
    assert reached.output == "just text" and not reached.is_error
    assert refused.is_error and f"{NOT_ALLOWED} (limited): {other.removeprefix('http://')}" in refused.output
    assert requested == ["/plain"]


def test_allow_mcp_servers_lets_the_sandbox_reach_the_agents_mcp_server(  # type: ignore[no-untyped-def]
    config, model_server, serve, requested, tmp_path
) -> None:
    from agentjournal.application import ManagedAgent
    from tests.test_confinement import TOOLS
    from tests.test_confinement import attack as api_attack

    address = outward_address()
    server, other = serve(address), serve(address)
    changed = msgspec.structs.replace(
        config,
        tools=[
            *TOOLS,
            {
                "type": "mcp_toolset",
                "mcp_server_name": "pages",
                "default_config": {"permission_policy": {"type": "always_allow"}},
            },
        ],
        mcp_servers=[{"type": "url", "name": "pages", "url": f"{server}/mcp"}],
        networking={"type": "limited", "allowed_hosts": [], "allow_mcp_servers": True},
    )
    agent = ManagedAgent(config=changed, store=tmp_path / "sessions.db")
    reached, refused = api_attack(
        agent,
        model_server,
        ScriptedToolCall("bash", {"command": python(GET, f"{server}/plain")}),
        ScriptedToolCall("bash", {"command": python(GET, f"{other}/plain")}),
    )
    assert reached.output == "just text"
    assert NOT_ALLOWED in refused.output
    assert "/plain" in requested
