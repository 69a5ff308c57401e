"""Which hosts the package installers reach, as this host configures them: what
``allow_package_managers`` opens under ``limited`` networking.

* **pip**: the hosts of ``index-url`` and ``extra-index-url`` in the ``PIP_INDEX_URL`` and
  ``PIP_EXTRA_INDEX_URL`` variables and in pip's configuration files (``/etc/pip.conf``,
  ``/etc/xdg/pip/pip.conf``, ``~/.config/pip/pip.conf``, ``~/.pip/pip.conf``, and the file
  ``PIP_CONFIG_FILE`` names); with none of them, PyPI's ``pypi.org`` and the host its
  files are served from, ``files.pythonhosted.org``.
* **apt**: the hosts of the sources apt uses (``/etc/apt/sources.list`` and the ``.list``
  and ``.sources`` files beside it).
* **npm**: ``registry.npmjs.org``, npm's default registry.

Each host is allowed on every port (a configured index may name its own).
"""

from __future__ import annotations

import configparser
import glob
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

PYPI_HOSTS = ("pypi.org", "files.pythonhosted.org")
NPM_HOSTS = ("registry.npmjs.org",)

PIP_CONFIG_FILES = ("/etc/pip.conf", "/etc/xdg/pip/pip.conf", "~/.config/pip/pip.conf", "~/.pip/pip.conf")
APT_SOURCES = "/etc/apt/sources.list"


def package_index_hosts() -> tuple[str, ...]:
    """Every host the package installers of this host's configuration reach."""
    return tuple(dict.fromkeys([*pip_index_hosts(), *apt_source_hosts(), *NPM_HOSTS]))


def pip_index_hosts() -> tuple[str, ...]:
    """The hosts of pip's configured indexes, or PyPI's when none is configured."""
    urls = [*os.environ.get("PIP_INDEX_URL", "").split(), *os.environ.get("PIP_EXTRA_INDEX_URL", "").split()]
    files = [*PIP_CONFIG_FILES, os.environ.get("PIP_CONFIG_FILE", "")]
    for name in filter(None, files):
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(os.path.expanduser(name))
        except (configparser.Error, UnicodeDecodeError, OSError):
            continue
        for section in parser.sections():
            for key in ("index-url", "extra-index-url"):
                urls += parser.get(section, key, fallback="").split()
    hosts = _hosts(urls)
    return hosts or PYPI_HOSTS


def apt_source_hosts() -> tuple[str, ...]:
    """The hosts of apt's sources, one-line (``deb URI suite``) and deb822 (``URIs:``) alike."""
    urls: list[str] = []
    files = [APT_SOURCES, *sorted(glob.glob(APT_SOURCES + ".d/*.list"))]
    for path in files:
        for line in _text(path).splitlines():
            words = re.sub(r"\[[^]]*\]", "", line).split()
            if len(words) >= 2 and words[0] in ("deb", "deb-src"):
                urls.append(words[1])
    for path in sorted(glob.glob(APT_SOURCES + ".d/*.sources")):
        urls += re.findall(r"^URIs:\s*(.*)$", _text(path), re.M)
    return _hosts(" ".join(urls).split())


def _text(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _hosts(urls: list[str]) -> tuple[str, ...]:
    hosts = []
    for url in urls:
        try:
            host = urlsplit(url).hostname
        except ValueError:
            continue
        if host and urlsplit(url).scheme in ("http", "https"):
            hosts.append(f"[{host}]" if ":" in host else host)
    return tuple(dict.fromkeys(hosts))
