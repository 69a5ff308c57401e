"""The compute's searches (glob, grep), listings and web fetch, on the host and in the Docker
sandbox: confined to the work folder, bounded in time and size, and a model's pattern, path
or URL is only ever data, never a command line."""

from __future__ import annotations

import time
import uuid

import pytest

from agentjournal.application.ports import Compute, ComputeError
from agentjournal.application.tools import ToolLimits, run_tool
from agentjournal.domain import ToolCall
from agentjournal.infrastructure.compute.host import HostCompute
from tests.conftest import PAGES

# How long past its time limit a search or fetch may take to be stopped, on a busy machine.
STOP_MARGIN = 5.0

# What a shell would run, option parsers take, or a path walk climb: each only data here.
# OUTSIDE is a file out of the work folder that no search may make.
OUTSIDE = "/tmp/agentjournal-pwned-by-a-pattern"
HOSTILE = [
    "$(touch pwned)",
    f"$(touch {OUTSIDE})",
    "`touch pwned`",
    "; touch pwned",
    f"' ; touch {OUTSIDE} ; '",
    "| touch pwned",
    "&& rm -rf .",
    "--help",
    "-rf",
    "--",
    "../",
    "../../etc/passwd",
    "\\",
]


def setup(compute: Compute, script: str) -> None:
    done = compute.execute(script, 30)
    assert done.exit_code == 0, done.output


def files_in_work_folder(compute: Compute) -> list[str]:
    return [entry.path for entry in compute.list_files(".", 100).entries]


# -- glob ---------------------------------------------------------------------------------


def test_glob_matches_doublestar_patterns_newest_first(either_compute):
    compute = either_compute
    setup(
        compute,
        "mkdir -p src/pkg/deep docs && touch -d '2020-01-01' src/old.py && touch src/pkg/new.py "
        "src/pkg/deep/x.py docs/a.md docs/b.txt .hidden.py && touch -d '2021-01-01' src/pkg/deep/x.py",
    )
    every_py = compute.glob("**/*.py", ".", 100, 10)
    assert set(every_py.paths) == {"src/old.py", "src/pkg/new.py", "src/pkg/deep/x.py", ".hidden.py"}
    assert every_py.paths[-2:] == ("src/pkg/deep/x.py", "src/old.py"), "newest first"
    assert not every_py.more
    assert compute.glob("src/*", ".", 100, 10).paths[0] in ("src/pkg/", "src/old.py")
    assert set(compute.glob("src/*", ".", 100, 10).paths) == {"src/pkg/", "src/old.py"}
    assert set(compute.glob("*.{md,txt}", "docs", 100, 10).paths) == {"docs/a.md", "docs/b.txt"}
    assert compute.glob("[ab].md", "docs", 100, 10).paths == ("docs/a.md",)
    assert compute.glob("*.rs", ".", 100, 10).paths == ()


def test_glob_and_grep_return_at_most_their_limit_and_say_so(either_compute):
    compute = either_compute
    setup(compute, "mkdir many && cd many && for i in $(seq 1 300); do echo needle > f$i.txt; done")
    globbed = compute.glob("many/*.txt", ".", 200, 30)
    assert len(globbed.paths) == 200 and globbed.more
    found = compute.grep("needle", "many", 50, 30)
    assert len(found.matches) == 50 and found.more
    everything = compute.grep("needle", "many", 1000, 30)
    assert len(everything.matches) == 300 and not everything.more


def test_a_listing_returns_at_most_its_limit_and_says_so(either_compute):
    compute = either_compute
    setup(compute, "mkdir many && cd many && seq -f 'f%04g' 1001 | xargs touch")
    cut = compute.list_files("many", 1000)
    assert len(cut.entries) == 1000 and cut.more
    whole = compute.list_files(".", 1001)
    assert len(whole.entries) == 1001 and not whole.more
    listed = run_tool(compute, ToolCall("call", "list_files", "{}"), ToolLimits())
    assert listed.truncated and not listed.is_error
    *lines, note = listed.output.splitlines()
    assert len(lines) == 1000 and note == "[more files not shown: list a folder below this one]"


@pytest.mark.parametrize("search", ["glob", "grep"])
def test_a_search_neither_follows_nor_lists_links_out_of_the_work_folder(either_compute, search):
    compute = either_compute
    setup(compute, "ln -s /etc etc && ln -s /etc/passwd pw && mkdir real && echo 'root:inside' > real/file")
    if search == "glob":
        assert compute.glob("**", ".", 1000, 30).paths == ("real/", "real/file")
    else:
        assert [m.path for m in compute.grep("root:", ".", 1000, 30).matches] == ["real/file"]
    for path in ("etc", "pw", "etc/ssl", "../", "/etc"):
        with pytest.raises(ComputeError, match="outside the work folder"):
            getattr(compute, search)("*" if search == "glob" else "root", path, 10, 10)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_patterns_and_paths_are_only_data(either_compute, hostile):
    compute = either_compute
    setup(compute, "echo 'a line; touch pwned' > notes.txt")
    for pattern in (hostile, f"*{hostile}*", f"**/{hostile}"):
        try:
            compute.glob(pattern, ".", 10, 10)
        except ComputeError as e:
            assert "invalid pattern" in str(e)
    for attempt in (lambda: compute.grep(hostile, ".", 10, 10), lambda: compute.grep("a", hostile, 10, 10)):
        try:
            attempt()
        except ComputeError as e:
            assert any(why in str(e) for why in ("invalid pattern", "no file or folder", "outside the work"))
    assert files_in_work_folder(compute) == ["notes.txt"]
    assert compute.execute(f"test -e {OUTSIDE}", 10).exit_code == 1


def test_a_pattern_that_leads_up_matches_nothing(either_compute):
    compute = either_compute
    setup(compute, "mkdir sub && touch top.txt sub/inner.txt")
    assert compute.glob("../*", "sub", 10, 10).paths == ()
    assert compute.glob("../../**", ".", 10, 10).paths == ()


def test_a_search_that_takes_too_long_is_ended_at_its_time_limit(either_compute):
    compute = either_compute
    setup(compute, "printf 'a%.0s' $(seq 1 40) > slow.txt && echo '!' >> slow.txt")
    started = time.monotonic()
    with pytest.raises(ComputeError, match="did not finish in 1 s"):
        compute.grep("(a|aa)*$", ".", 10, 1)
    assert time.monotonic() - started < 1 + STOP_MARGIN


@pytest.mark.parametrize("pattern", ["(unclosed", "[z-a]", "*"])
def test_a_bad_regular_expression_is_named(either_compute, pattern):
    with pytest.raises(ComputeError, match="invalid pattern"):
        either_compute.grep(pattern, ".", 10, 10)


@pytest.mark.parametrize("pattern", ["{a,b", "[ab"])
def test_a_bad_glob_is_named(either_compute, pattern):
    with pytest.raises(ComputeError, match="invalid pattern"):
        either_compute.glob(pattern, ".", 10, 10)


# -- grep ---------------------------------------------------------------------------------


def test_grep_finds_lines_with_their_numbers(either_compute):
    compute = either_compute
    setup(
        compute,
        "mkdir -p src .git node_modules/lib && printf 'one\\nTODO: two\\nthree todo\\n' > src/a.txt "
        "&& echo 'TODO in git' > .git/HEAD && echo 'TODO in deps' > node_modules/lib/x.js "
        "&& printf 'TODO\\0binary' > blob.bin",
    )
    found = compute.grep("TODO", ".", 100, 10)
    assert [(m.path, m.line, m.text) for m in found.matches] == [("src/a.txt", 2, "TODO: two")]
    ignoring_case = compute.grep("(?i)todo", "src/a.txt", 100, 10)
    assert [(m.line, m.text) for m in ignoring_case.matches] == [(2, "TODO: two"), (3, "three todo")]
    assert compute.grep("absent", ".", 100, 10).matches == ()


def test_grep_shows_a_long_line_cut_and_skips_what_it_cannot_read(either_compute):
    compute = either_compute
    setup(
        compute, "head -c 300000 /dev/zero | tr '\\0' x > long.txt && echo needle >> long.txt && mkfifo pipe"
    )
    (found,) = compute.grep("needle", ".", 10, 30).matches
    assert (found.path, found.line) == ("long.txt", 1), "the end of a long line is searched"
    assert found.text.startswith("[...] xxx") and found.text.endswith("xneedle") and len(found.text) == 1006
    with pytest.raises(ComputeError, match="not a regular file or a folder"):
        compute.grep("x", "pipe", 10, 10)


def test_grep_and_glob_skip_the_engines_own_folders_at_the_top(either_compute):
    compute = either_compute
    setup(compute, "mkdir -p .venv/lib .home && echo needle > .venv/lib/x.py && echo needle > .home/y")
    assert compute.grep("needle", ".", 10, 10).matches == ()
    assert compute.glob("**", ".", 10, 10).paths == ()
    assert [m.path for m in compute.grep("needle", ".venv", 10, 10).matches] == [".venv/lib/x.py"]


# -- web fetch ----------------------------------------------------------------------------


def test_a_page_is_fetched_from_where_the_tools_run(either_compute, web):
    page = either_compute.fetch(f"{web}/page.html", 100_000, 10)
    assert (page.status, page.content_type, page.charset) == (200, "text/html", "utf-8")
    assert page.body == PAGES["/page.html"][2] and not page.truncated
    redirected = either_compute.fetch(f"{web}/to-plain", 100_000, 10)
    assert (redirected.url, redirected.body) == (f"{web}/plain", b"just text")
    missing = either_compute.fetch(f"{web}/missing", 100_000, 10)
    assert (missing.status, missing.body) == (404, b"not here")


def test_a_fetched_body_is_capped(either_compute, web):
    page = either_compute.fetch(f"{web}/big", 1000, 10)
    assert page.body == b"y" * 1000 and page.truncated


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x", "data:text/plain,hi"])
def test_only_http_and_https_are_fetched(either_compute, url):
    with pytest.raises(ComputeError, match="only http and https URLs can be fetched"):
        either_compute.fetch(url, 1000, 10)


def test_a_redirect_to_a_local_file_is_refused(either_compute, web):
    with pytest.raises(ComputeError, match="redirected to a 'file' URL"):
        either_compute.fetch(f"{web}/to-file", 1000, 10)


def test_a_fetch_that_gets_no_answer_ends_at_its_time_limit(either_compute, web):
    started = time.monotonic()
    with pytest.raises(ComputeError, match="timed out|did not finish"):
        either_compute.fetch(f"{web}/hang", 1000, 1)
    assert time.monotonic() - started < 1 + STOP_MARGIN


def test_an_unreachable_address_is_a_clear_error(either_compute):
    with pytest.raises(ComputeError, match="could not fetch 'http://127.0.0.1:9/'"):
        either_compute.fetch("http://127.0.0.1:9/", 1000, 10)


def test_the_host_fetches_with_a_commands_environment_not_the_engines(tmp_path, monkeypatch, serve):
    """A proxy the engine is configured with (and its credentials) is not the fetch's: it
    would fail through this one, which nothing listens on."""
    host = HostCompute(tmp_path / "work")
    host.attach(uuid.uuid4(), None)
    monkeypatch.setenv("http_proxy", "http://user:secret@127.0.0.1:9")
    monkeypatch.setenv("no_proxy", "")
    assert host.fetch(f"{serve('127.0.0.1')}/plain", 1000, 10).body == b"just text"


@pytest.mark.docker
def test_a_sandbox_without_networking_fetches_nothing(sandbox):
    isolated = sandbox(networking={"type": "none"})
    with pytest.raises(ComputeError, match="could not fetch"):
        isolated.fetch("http://example.org/", 1000, 10)
