"""Repositories cloned with git itself, on the host, for sessions to mount.

``git clone`` runs in a temporary folder with a clean environment: no user or system
config, no prompt for credentials, only the ``http`` and ``https`` transports (so a
client cannot have the server read its own ``file://`` repositories, or run ``ext::``
commands, through a URL or a submodule). The token travels as an HTTP header set
through git's environment (``GIT_CONFIG_*``), never in ``argv`` or the URL, so neither
``ps`` nor ``.git/config`` nor git's messages hold it; it is removed from those
messages anyway before they are shown.
"""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import tempfile
from pathlib import Path

from agentjournal.application.errors import RepositoryUnavailable
from agentjournal.application.ports import Checkout, FileContents

CLONE_TIMEOUT = 600.0
"""Seconds a clone may take."""

ALLOWED_PROTOCOLS = "http:https"


class GitCloner:
    """A :class:`~agentjournal.application.ports.RepositoryCloner` running ``git``."""

    def __init__(self, git: str = "git", timeout: float = CLONE_TIMEOUT) -> None:
        self.git = git
        self.timeout = timeout

    def clone(self, url: str, token: str | None, branch: str = "", commit: str = "") -> Checkout:
        with tempfile.TemporaryDirectory(prefix="agentjournal-clone-") as scratch:
            target = Path(scratch) / "checkout"
            env = _environment(Path(scratch), token)
            args = ["clone", "--quiet", *(["--branch", branch, "--single-branch"] if branch else [])]
            self._git([*args, "--", url, str(target)], env, token, cwd=Path(scratch))
            if commit:
                self._git(["checkout", "--quiet", "--detach", commit, "--"], env, token, cwd=target)
            head = self._git(["rev-parse", "HEAD"], env, token, cwd=target).strip()
            return Checkout(commit=head, files=list(_files(target)))

    def _git(self, args: list[str], env: dict[str, str], token: str | None, cwd: Path) -> str:
        try:
            done = subprocess.run(
                [self.git, *args], cwd=cwd, env=env, capture_output=True, text=True,
                timeout=self.timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise RepositoryUnavailable(f"git {args[0]} took longer than {self.timeout:g} seconds") from None
        except OSError as e:
            raise RepositoryUnavailable(f"cannot run git: {e}") from None
        if done.returncode != 0:
            message = _without(done.stderr.strip() or f"exit status {done.returncode}", token)
            raise RepositoryUnavailable(f"git {args[0]} failed: {message}")
        return done.stdout


def _environment(home: Path, token: str | None) -> dict[str, str]:
    """A clean environment for git: its own empty home, no prompts, no system config,
    http(s) only, and the token as an ``Authorization`` header (HTTP Basic with the
    user ``x-access-token``, as GitHub and most git hosts take a token)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS,
        "GIT_ASKPASS": "true",
        "LC_ALL": "C",
    }
    if token:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        env |= {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        }
    return env


def _without(text: str, token: str | None) -> str:
    if not token:
        return text
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return text.replace(token, "[redacted]").replace(basic, "[redacted]")


def _files(root: Path) -> list[FileContents]:
    """Every regular file below ``root``, relative, in path order; links are left out."""
    found: list[FileContents] = []
    for folder, folders, names in os.walk(root):
        folders.sort()
        for name in sorted(names):
            path = Path(folder) / name
            info = path.lstat()
            if stat.S_ISREG(info.st_mode):
                relative = path.relative_to(root).as_posix()
                found.append(FileContents(relative, stat.S_IMODE(info.st_mode), path.read_bytes()))
    return found
