"""What ``limited`` networking lets a sandbox reach: the allow-list's entries, read.

An entry of ``allowed_hosts`` names one host exactly (``api.example.com``), every
subdomain of one (``*.example.com``: ``a.example.com`` and ``a.b.example.com``, not
``example.com`` itself), or one IP literal (``192.0.2.7``, ``[2001:db8::7]``); each may end
in ``:port`` to allow that port only, and without one allows any port. Nothing else is
an entry: no scheme, path, user or wildcard elsewhere, so an entry never allows more
than it appears to. Names compare without regard to case.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
"""One label of a host name (an underscore is allowed: some service names have one)."""


@dataclass(frozen=True)
class HostRule:
    """One allowed destination: ``host`` (lowercase; an IPv6 literal in brackets), whether
    its subdomains are meant rather than itself, whether it is an IP literal, and the one
    ``port`` allowed (None: any)."""

    host: str
    port: int | None = None
    subdomains: bool = False
    literal: bool = False

    def __str__(self) -> str:
        name = f"*.{self.host}" if self.subdomains else self.host
        return name if self.port is None else f"{name}:{self.port}"


def parse_host_rule(entry: str) -> HostRule:
    """The rule ``entry`` (one item of ``allowed_hosts``) stands for, or a ValueError
    saying what is wrong with it."""
    text = entry.strip().lower()
    if any(mark in text for mark in "/@?#") or any(space in text for space in " \t\n"):
        raise ValueError(
            f"allowed_hosts entry {entry!r} names a host, not a URL: leave out the scheme and path"
        )
    host, port = _split_port(text, entry)
    subdomains = host.startswith("*.")
    if subdomains:
        host = host[2:]
    if host.startswith("[") and host.endswith("]"):
        literal = _ip(host[1:-1], entry, version=6)
        return HostRule(f"[{literal}]", port, literal=True) if not subdomains else _no_wildcard(entry)
    if re.fullmatch(r"[0-9.]+", host):
        literal = _ip(host, entry, version=4)
        return HostRule(literal, port, literal=True) if not subdomains else _no_wildcard(entry)
    labels = host.split(".")
    if not host or len(host) > 253 or not all(LABEL.match(label) for label in labels):
        raise ValueError(
            f"allowed_hosts entry {entry!r} is not a host name, '*.' and a domain, or an IP literal "
            "(an IPv6 literal in brackets), each with an optional ':port'"
        )
    if subdomains and len(labels) < 2:
        raise ValueError(f"allowed_hosts entry {entry!r}: '*.' needs a domain of two labels or more")
    return HostRule(host, port, subdomains=subdomains)


def _split_port(text: str, entry: str) -> tuple[str, int | None]:
    """``text`` split into its host and its port, if it names one."""
    if text.startswith("["):
        host, _, rest = text.partition("]")
        host += "]"
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise ValueError(f"allowed_hosts entry {entry!r}: only ':port' may follow an IPv6 literal")
        return host, _port(rest[1:], entry)
    if text.count(":") > 1:
        raise ValueError(f"allowed_hosts entry {entry!r}: an IPv6 literal goes in brackets, as [2001:db8::1]")
    host, colon, port = text.partition(":")
    return host, _port(port, entry) if colon else None


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"allowed_hosts entry {entry!r}: the port must be a number from 1 to 65535")
    return int(text)


def _ip(text: str, entry: str, *, version: int) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    if address is None or address.version != version:
        raise ValueError(f"allowed_hosts entry {entry!r} is not a valid IPv{version} address")
    return str(address)


def _no_wildcard(entry: str) -> HostRule:
    raise ValueError(f"allowed_hosts entry {entry!r}: '*.' goes before a domain, not an IP literal")


def host_rules(entries: list[str] | tuple[str, ...]) -> tuple[HostRule, ...]:
    """The rules of every entry, in order, without repeats (a ValueError for a bad one)."""
    return tuple(dict.fromkeys(parse_host_rule(entry) for entry in entries))


def server_entry(url: str) -> str | None:
    """The ``allowed_hosts`` entry that opens the server at ``url`` (an MCP server's): its
    host and port (the scheme's default when the URL names none), or None for a URL
    without a host."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    if not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}"


def with_servers(networking: Mapping[str, Any], urls: Iterable[str]) -> dict[str, Any]:
    """``networking`` with the servers at ``urls`` added to its ``allowed_hosts`` when it
    is ``limited`` with ``allow_mcp_servers``; as it is otherwise."""
    opened = dict(networking)
    if opened.get("type") != "limited" or not opened.get("allow_mcp_servers"):
        return opened
    entries = [entry for entry in map(server_entry, urls) if entry is not None]
    opened["allowed_hosts"] = list(dict.fromkeys([*(opened.get("allowed_hosts") or ()), *entries]))
    return opened
