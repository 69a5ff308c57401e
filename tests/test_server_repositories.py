"""``github_repository`` resources: a repository served from a local bare repository over
git's HTTP transport (no internet), cloned with git into a new session at a branch and
at a commit, through the official SDK against a real server; the token authenticates
the clone and is found nowhere afterwards (responses, events, the log, the export, the
store's file)."""

from __future__ import annotations

import base64
import functools
import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from tests.serving import API_KEY
from tests.test_server_resources import new_agent_session, recorded_files

pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"), pytest.mark.timeout(120)]

TOKEN = "ghp_" + "s3cr3tT0k3n" * 3


def git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@example.org", "GIT_COMMITTER_NAME": "a",
           "GIT_COMMITTER_EMAIL": "a@example.org", "HOME": str(cwd), "PATH": "/usr/bin:/bin"}  # fmt: skip
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


class Repository:
    """A bare repository served over git's (dumb) HTTP transport, asking for ``TOKEN``."""

    def __init__(self, root: Path) -> None:
        work = root / "work"
        work.mkdir()
        git(work, "init", "--quiet", "--initial-branch=main")
        (work / "README.md").write_text("first\n")
        git(work, "add", ".")
        git(work, "commit", "--quiet", "-m", "first")
        self.first = git(work, "rev-parse", "HEAD").strip()
        (work / "README.md").write_text("second\n")
        (work / "run.sh").write_text("#!/bin/sh\necho run\n")
        (work / "run.sh").chmod(0o755)
        git(work, "add", ".")
        git(work, "commit", "--quiet", "-m", "second")
        git(work, "checkout", "--quiet", "-b", "feature")
        (work / "feature.txt").write_text("on the branch\n")
        git(work, "add", ".")
        git(work, "commit", "--quiet", "-m", "feature")
        git(work, "checkout", "--quiet", "main")
        git(root, "clone", "--quiet", "--bare", str(work), "served/tools.git")
        git(root / "served/tools.git", "update-server-info")
        self.authorizations: list[str] = []
        handler = functools.partial(self._Handler, self, directory=str(root / "served"))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tools.git"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    class _Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, repository: Repository, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            self.repository = repository
            super().__init__(*args, **kwargs)

        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            given = self.headers.get("Authorization", "")
            self.repository.authorizations.append(given)
            expected = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
            if given != expected:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.end_headers()
                return
            self.path = self.path.split("?", 1)[0]  # a static server: git falls back to the dumb protocol
            super().do_GET()

        def log_message(self, *args: object) -> None:
            pass


@pytest.fixture
def client(api_server):  # type: ignore[no-untyped-def]
    return api_server.client()


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[Repository]:
    (tmp_path / "git").mkdir()
    served = Repository(tmp_path / "git")
    yield served
    served.server.shutdown()
    served.server.server_close()


def test_a_repository_is_cloned_at_a_branch_and_at_a_commit_and_the_token_is_kept_nowhere(
    api_server, client, repository, store: Path
):
    session = new_agent_session(client, resources=[
        {"type": "github_repository", "url": repository.url, "authorization_token": TOKEN,
         "checkout": {"type": "branch", "name": "feature"}},
        {"type": "github_repository", "url": repository.url, "authorization_token": TOKEN,
         "checkout": {"type": "commit", "sha": repository.first}, "mount_path": "/workspace/old"},
    ])  # fmt: skip
    branch, commit = session.resources
    assert (branch.type, branch.url, branch.mount_path) == (
        "github_repository",
        repository.url,
        "/workspace/tools",
    )
    assert (branch.checkout.type, branch.checkout.name) == ("branch", "feature")
    assert (commit.checkout.type, commit.checkout.sha, commit.mount_path) == (
        "commit",
        repository.first,
        "/workspace/old",
    )
    assert repository.authorizations and all(repository.authorizations)

    files = recorded_files(api_server, session.id)
    assert {"tools/README.md", "tools/feature.txt", "tools/run.sh", "tools/.git/HEAD"} <= set(files)
    assert files["tools/run.sh"]["mode"] & 0o111
    assert {"old/README.md", "old/.git/HEAD"} <= set(files) and "old/run.sh" not in files
    headers = {"x-api-key": API_KEY}
    readme = httpx.get(
        f"{api_server.url}/x-agentjournal/v1/sessions/{session.id}/files?path=old/README.md", headers=headers
    )
    assert readme.content == b"first\n"

    rotated = client.beta.sessions.resources.update(
        branch.id, session_id=session.id, authorization_token=TOKEN + "2"
    )
    assert rotated.id == branch.id and rotated.updated_at > branch.updated_at

    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    seen = [
        client.beta.sessions.retrieve(session.id).model_dump_json(),
        client.beta.sessions.resources.list(session.id).model_dump_json(),
        rotated.model_dump_json(),
        *(e.model_dump_json() for e in client.beta.sessions.events.list(session.id)),
        httpx.get(f"{api_server.url}/x-agentjournal/v1/sessions/{session.id}/log", headers=headers).text,
        httpx.get(f"{api_server.url}/x-agentjournal/v1/sessions/{session.id}/export", headers=headers).text,
        store.read_bytes().decode("latin-1"),
    ]
    for text in seen:
        assert TOKEN not in text and basic not in text and "s3cr3tT0k3n" not in text


def test_a_clone_git_refuses_is_a_400_that_shows_no_token(client, repository):
    with pytest.raises(anthropic.BadRequestError) as wrong:
        new_agent_session(client, resources=[
            {"type": "github_repository", "url": repository.url, "authorization_token": TOKEN + "wrong"},
        ])  # fmt: skip
    assert "git clone failed" in wrong.value.message and "wrong" not in wrong.value.message
    with pytest.raises(anthropic.BadRequestError) as missing:
        new_agent_session(client, resources=[
            {"type": "github_repository", "url": repository.url, "authorization_token": TOKEN,
             "checkout": {"type": "branch", "name": "nowhere"}},
        ])  # fmt: skip
    assert "nowhere" in missing.value.message
    for url, message in (
        (f"file://{Path.cwd()}", "http or https"),
        ("https://u:p@example.org/r.git", "credentials"),
    ):
        with pytest.raises(anthropic.BadRequestError) as refused:
            new_agent_session(client, resources=[{"type": "github_repository", "url": url}])
        assert message in refused.value.message
    assert client.beta.sessions.list().data == []
