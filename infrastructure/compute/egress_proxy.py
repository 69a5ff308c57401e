"""The egress proxy of ``limited`` networking: Squid (Debian's ``squid``), configured and
supervised by the engine.

A session under ``limited`` networking gets a Squid of its own, started when its first
tool needs the network and stopped with its compute (or the engine: Squid is started
with a parent-death signal, so even an engine killed by SIGKILL takes it along). The
engine writes its configuration (:func:`squid_config`) into a private folder:

* it listens on one loopback port of the host and nowhere else;
* it forwards plain HTTP requests (``GET http://host/...``) and opens HTTPS tunnels
  (``CONNECT host:port``), nothing else (no FTP, no cache manager), and caches nothing;
* each allowed destination (:class:`~agentjournal.domain.egress.HostRule`) is one access
  rule: an exact name or IP literal (``dstdomain -n``: compared as written, never
  through DNS), subdomains (``dstdom_regex`` anchored on ``.domain``), with its port when
  the entry names one; everything else is denied;
* a refused plain request gets a page saying the host is not allowed by the session's
  networking, and every request is logged (:meth:`EgressProxy.refusals_since`), so a
  refused tunnel, whose page no client shows, is reported in the tool's output too.

Sandboxes without a network of their own reach it through a Unix socket
(:attr:`EgressProxy.socket`), which ``socat`` bridges to Squid's port.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import unquote

from agentjournal.application.ports import ComputeError
from agentjournal.domain.egress import HostRule, host_rules
from agentjournal.infrastructure.compute.package_indexes import package_index_hosts

START_TIMEOUT = 30.0
"""Seconds Squid and its bridge have to start listening."""

STOP_GRACE = 5.0
"""Seconds a stopped proxy has to end before it is killed."""

SQUID_USER = "proxy"
"""Who Squid runs as when the engine is root (Debian's ``squid`` package makes the user)."""

TEMPLATES = "/usr/share/squid/errors/templates"
"""Squid's own error pages, which the refusal page joins."""

FOLDER_PREFIX = "agentjournal-egress-"
"""How the folder of a proxy's configuration, logs and socket is named (in the system's
temporary folder, so the socket's path stays short), before its engine's process id."""

REFUSAL_PAGE = "ERR_AGENTJOURNAL_NOT_ALLOWED"

REFUSAL_TEXT = """<!DOCTYPE html>
<html><head><title>%H is not allowed by this session's networking</title></head>
<body><p>agentjournal egress proxy: the host %H (port %p) is not allowed by this session's
networking (limited: it is not in allowed_hosts).</p></body></html>
"""

ACCESS_LOG = "access.log"

LOG_FORMAT = "%Ss %rm %>rd %>rP"
"""What Squid logs per request: its verdict, the method, the host and the port."""


@dataclass(frozen=True)
class Refusal:
    """One request the proxy denied: how it was made, and where to."""

    method: str
    host: str
    port: str

    def __str__(self) -> str:
        return f"{self.host}:{self.port}" if self.port not in ("", "-") else self.host


def rules_for(networking: Mapping[str, Any]) -> tuple[HostRule, ...]:
    """The destinations ``networking`` (a ``limited`` one) allows: its ``allowed_hosts``
    (where the session's runtime has added its MCP servers under ``allow_mcp_servers``, see
    :func:`~agentjournal.domain.egress.with_servers`) and, with ``allow_package_managers``,
    the package indexes this host's installers use
    (:mod:`~agentjournal.infrastructure.compute.package_indexes`)."""
    entries = list(networking.get("allowed_hosts") or ())
    if networking.get("allow_package_managers"):
        entries += package_index_hosts()
    try:
        return host_rules(entries)
    except ValueError as e:
        raise ComputeError(str(e)) from None


def squid_config(rules: Sequence[HostRule], listen: str, logs: PurePath, errors: PurePath | None) -> str:
    """Squid's configuration for a proxy listening at ``listen`` (``address:port``, or a
    port for every address) that allows ``rules`` alone, keeping its logs in the folder
    ``logs`` and its refusal page in ``errors`` (when Squid's own pages were found to go
    beside it); the paths are as Squid sees them."""
    lines = [
        f"http_port {listen}",
        "pid_filename none",
        f"cache_log stdio:{logs / 'cache.log'}",
        f"logformat egress {LOG_FORMAT}",
        f"access_log stdio:{logs / ACCESS_LOG} egress",
        f"coredump_dir {logs}",
        "cache deny all",
        "cache_mem 0 MB",
        "shutdown_lifetime 0 seconds",
        "pinger_enable off",
        "netdb_filename none",
        "forwarded_for delete",
        "via off",
        "visible_hostname agentjournal-egress",
        "acl web proto HTTP",
        "acl CONNECT method CONNECT",
        "http_access deny !web !CONNECT",
    ]
    for index, rule in enumerate(rules):
        name = f"allowed{index}"
        if rule.subdomains:
            lines.append(f"acl {name} dstdom_regex -n -i \\.{re.escape(rule.host)}$")
        else:
            lines.append(f"acl {name} dstdomain -n {rule.host}")
        if rule.port is None:
            lines.append(f"http_access allow {name}")
        else:
            lines += [f"acl {name}_port port {rule.port}", f"http_access allow {name} {name}_port"]
    if errors is not None:
        lines += [f"error_directory {errors}", f"deny_info {REFUSAL_PAGE} all"]
    lines.append("http_access deny all")
    return "\n".join(lines) + "\n"


class EgressProxy:
    """One Squid allowing ``rules``, with a ``socat`` bridge from :attr:`socket` to it.
    :meth:`start` starts both (once); :meth:`stop` ends both and removes their folder."""

    def __init__(self, rules: Sequence[HostRule]) -> None:
        self.rules = tuple(rules)
        self.folder: Path | None = None
        self.port = 0
        self._processes: list[subprocess.Popen[bytes]] = []
        self._lock = threading.Lock()

    @property
    def socket(self) -> Path:
        """The Unix socket that reaches the proxy (the proxy must be started)."""
        if self.folder is None:
            raise ComputeError("the egress proxy is not started")
        return self.folder / "proxy.sock"

    @property
    def squid_pid(self) -> int | None:
        """Squid's process id while the proxy runs (``setpriv`` becomes Squid in place)."""
        return self._processes[0].pid if self._processes else None

    def start(self) -> EgressProxy:
        """Start Squid and its bridge, unless running already, and return once both listen."""
        with self._lock:
            if self.folder is not None and all(p.poll() is None for p in self._processes):
                return self
            self._stop()
            for tool in ("squid", "socat"):
                if _program(tool) is None:
                    raise ComputeError(
                        f"'limited' networking needs {tool} on this host (Debian and Ubuntu: "
                        f"apt-get install {tool}), and {tool} is not installed"
                    )
            try:
                self._start()
            except BaseException:
                self._stop()
                raise
            return self

    def _start(self) -> None:
        sweep_folders()
        folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))
        self.folder = folder
        user = _squid_user()
        errors = error_pages(folder, Path(TEMPLATES))
        self.port = _free_port()
        (folder / "squid.conf").write_text(squid_config(self.rules, f"127.0.0.1:{self.port}", folder, errors))
        if user is not None:
            for path in (folder, *folder.rglob("*")):
                os.chown(path, user.pw_uid, user.pw_gid, follow_symlinks=False)
        squid = _program("squid") or "squid"
        self._processes.append(_supervised([squid, "-N", "-f", str(folder / "squid.conf")], user))
        _wait_listening(self.port, self._processes[0], folder / "cache.log")
        bridge = [
            "socat",
            f"UNIX-LISTEN:{self.socket},fork,mode=666",
            f"TCP:127.0.0.1:{self.port}",
        ]
        self._processes.append(_supervised(bridge, user))
        _wait_for_socket(self.socket, self._processes[1])

    def stop(self) -> None:
        """End Squid and its bridge, and remove their folder."""
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            try:
                process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._processes.clear()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def log_position(self) -> int:
        """Where the request log ends now: what :meth:`refusals_since` reads from."""
        return log_position(self.folder / ACCESS_LOG) if self.folder is not None else 0

    def refusals_since(self, position: int) -> list[Refusal]:
        """The requests denied since ``position`` of the request log, first to last."""
        return refusals_since(self.folder / ACCESS_LOG, position) if self.folder is not None else []


def log_position(log: Path) -> int:
    """Where the request log ``log`` ends now (0 before Squid writes it)."""
    try:
        return log.stat().st_size
    except OSError:
        return 0


def refusals_since(log: Path, position: int) -> list[Refusal]:
    """The requests the request log ``log`` records as denied since ``position``."""
    try:
        with open(log, "rb") as written:
            written.seek(position)
            text = written.read().decode(errors="replace")
    except OSError:
        return []
    refused = []
    for line in text.splitlines():
        words = line.split()
        if len(words) == 4 and words[0] == "TCP_DENIED":
            refused.append(Refusal(words[1], unquote(words[2]), words[3]))
    return list(dict.fromkeys(refused))


def sweep_folders() -> None:
    """Remove the folders of proxies whose engine is gone (one killed had no time to): the
    folder's name holds its engine's process id."""
    for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*-*"):
        pid = folder.name.removeprefix(FOLDER_PREFIX).split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def refusal_note(refused: Sequence[Refusal]) -> str:
    """What a tool's output gains when the proxy refused some of its requests."""
    if not refused:
        return ""
    hosts = ", ".join(dict.fromkeys(str(r) for r in refused))
    return (
        f"\n[agentjournal] not allowed by this session's networking (limited): {hosts}; "
        "the sandbox reaches only the hosts in its allowed_hosts\n"
    )


def _program(name: str) -> str | None:
    """Where program ``name`` is: on the engine's ``PATH``, or in the system's folders
    (Squid is in ``/usr/sbin``, which an unprivileged user's ``PATH`` often leaves out)."""
    return shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin")


def _squid_user() -> pwd.struct_passwd | None:
    """Who Squid runs as: an engine running as root gives it ``proxy`` (else ``nobody``);
    any other engine runs it as itself (None)."""
    if os.geteuid() != 0:
        return None
    for name in (SQUID_USER, "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ComputeError("no unprivileged user to run the egress proxy as (neither proxy nor nobody exists)")


def error_pages(folder: Path, templates: PurePath) -> Path | None:
    """A folder ``errors`` in ``folder``: links to Squid's own error pages (at ``templates``
    where Squid runs; their names are read where Debian puts them on this host) and the
    refusal page beside them. None when this host has no Squid pages to name (Squid's own
    refusal page is shown then)."""
    if not os.path.isdir(TEMPLATES):
        return None
    errors = folder / "errors"
    errors.mkdir()
    for name in os.listdir(TEMPLATES):
        (errors / name).symlink_to(templates / name)
    (errors / REFUSAL_PAGE).write_text(REFUSAL_TEXT)
    return errors


def _free_port() -> int:
    """A loopback port free now (a race with another process taking it ends in Squid's
    failing to start, which says so)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _supervised(argv: Sequence[str], user: pwd.struct_passwd | None) -> subprocess.Popen[bytes]:
    """Start ``argv`` (as ``user``, when given) so that it dies with the engine, however
    the engine ends: ``setpriv`` gives it a parent-death signal."""
    switch = []
    if user is not None:
        switch = [f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    try:
        return subprocess.Popen(  # noqa: S603 - the engine's own command line
            ["setpriv", *switch, "--pdeathsig=KILL", "--", *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError as e:
        raise ComputeError(f"could not start {argv[0]} for the egress proxy: {e}") from None


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once something accepts connections on loopback ``port``; a ComputeError
    with the end of Squid's log if it ends first, or does not listen in time."""
    deadline = time.monotonic() + START_TIMEOUT
    for pause in _pauses():
        if process.poll() is not None or time.monotonic() > deadline:
            said = log.read_text(errors="replace")[-2000:] if log.is_file() else ""
            raise ComputeError(f"the egress proxy (squid) did not start: {said.strip() or 'no message'}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(pause)


def _wait_for_socket(path: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    for pause in _pauses():
        if path.exists():
            return
        if process.poll() is not None or time.monotonic() > deadline:
            raise ComputeError("the egress proxy's bridge (socat) did not start")
        time.sleep(pause)


def _pauses() -> Iterable[float]:
    pause = 0.005
    while True:
        yield pause
        pause = min(pause * 2, 0.2)
