"""Workspace snapshots on the host and in the Docker sandbox: every regular file's hash,
size and mode, the contents of what changed only, unchanged files not read again, links
and ignored names left out, big files recorded by hash and size only."""

from __future__ import annotations

import hashlib

import pytest

from agentjournal.application.ports import Compute, ComputeError, FileContents, SnapshotLimits
from agentjournal.domain import FileState, SessionConfig
from agentjournal.infrastructure.compute.sandbox_snapshot import MAX_DEPTH

LIMITS = SnapshotLimits(ignore=SessionConfig("m", "s", "n", ()).snapshot_ignore, max_file_bytes=1000)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run(compute: Compute, script: str) -> None:
    done = compute.execute(script, 30)
    assert done.exit_code == 0, done.output


def test_a_snapshot_lists_every_file_and_returns_what_the_caller_lacks(either_compute):
    compute = either_compute
    run(
        compute,
        "mkdir -p src/pkg .venv/lib node_modules/x src/__pycache__ && printf 'print(1)\\n' > src/main.py "
        "&& printf '#!/bin/sh\\n' > run.sh && chmod 755 run.sh && printf '' > src/pkg/__init__.py "
        "&& printf 'x' > .venv/lib/site.py && printf 'x' > node_modules/x/i.js && printf 'c' > src/__pycache__/m.pyc "
        "&& ln -s src/main.py link.py && ln -s /etc/passwd outside && head -c 5000 /dev/zero > big.bin",
    )
    scan = compute.snapshot({}, LIMITS)
    assert scan.files == {
        "src/main.py": FileState(sha(b"print(1)\n"), 9, 0o644),
        "run.sh": FileState(sha(b"#!/bin/sh\n"), 10, 0o755),
        "src/pkg/__init__.py": FileState(sha(b""), 0, 0o644),
        "big.bin": FileState(sha(bytes(5000)), 5000, 0o644, stored=False),
    }
    assert scan.contents == {
        "src/main.py": b"print(1)\n",
        "run.sh": b"#!/bin/sh\n",
        "src/pkg/__init__.py": b"",
    }

    known = {path: state.hash for path, state in scan.files.items()}
    again = compute.snapshot(known, LIMITS)
    assert again.files == scan.files and again.contents == {}

    run(compute, "printf 'print(2)\\n' > src/main.py && rm run.sh")
    changed = compute.snapshot(known, LIMITS)
    assert changed.contents == {"src/main.py": b"print(2)\n"}
    assert set(changed.files) == {"src/main.py", "src/pkg/__init__.py", "big.bin"}


def test_a_file_whose_time_size_and_inode_are_unchanged_is_read_again_only_when_reported(either_compute):
    compute = either_compute
    run(compute, "printf 'aaaa' > old.txt && touch -d 2020-01-01 old.txt")
    first = compute.snapshot({}, LIMITS)
    # Same size, same inode, the same time put back.
    run(compute, "printf 'bbbb' 1<> old.txt && touch -d 2020-01-01 old.txt")
    again = compute.snapshot({"old.txt": sha(b"aaaa")}, LIMITS)
    if compute.kind == "docker":  # a full scan trusts what it found: the file is not read
        assert again.files == first.files
        # A new time is a change, and the file is read.
        run(compute, "touch old.txt")
        assert compute.snapshot({"old.txt": sha(b"aaaa")}, LIMITS).contents == {"old.txt": b"bbbb"}
    else:  # the host's change journal reported the write: the file is read whatever its time
        assert again.contents == {"old.txt": b"bbbb"}
        assert again.files["old.txt"] == FileState(sha(b"bbbb"), 4, 0o644)


def test_a_restore_removes_the_folders_it_empties_and_no_others(either_compute):
    compute = either_compute
    run(
        compute,
        "mkdir -p gone/deep kept/ignored/__pycache__ other && chmod 700 other && printf a > gone/deep/a "
        "&& printf b > kept/ignored/b && printf c > kept/ignored/__pycache__/c.pyc && printf o > other/o "
        "&& mkdir -p outside && printf x > outside/x && ln -s outside through && mkdir empty",
    )
    compute.restore(
        [FileContents("other/new", 0o644, b"n")],
        remove=["gone/deep/a", "kept/ignored/b", "other/o", "missing/m"],
    )
    listing = compute.execute(
        "find . -mindepth 1 -name .home -prune -o -printf '%y %m %P\\n' | sort", 30
    ).output.splitlines()
    assert listing == [
        "d 700 other",  # the same folder, refilled: it was never empty
        "d 755 empty",  # not on the way to a removed file: a restore leaves it
        "d 755 kept",
        "d 755 kept/ignored",  # holds what the log does not record
        "d 755 kept/ignored/__pycache__",
        "d 755 outside",
        "f 644 kept/ignored/__pycache__/c.pyc",
        "f 644 other/new",
        "f 644 outside/x",
        "l 777 through",
    ]
    with pytest.raises(ComputeError):
        compute.restore([], remove=["through/x"])  # a link on the way is never followed
    assert compute.read_file("outside/x") == b"x"


def test_what_lies_deeper_than_a_path_may_go_is_left_out(either_compute):
    compute = either_compute
    deepest = "d/" * (MAX_DEPTH - 1)
    too_deep = "d/" * 1200  # nested by a command far deeper than a walk a call per level could go
    run(compute, f"mkdir -p {too_deep} && printf a > {deepest}kept && printf b > {deepest}d/left-out")
    scan = compute.snapshot({}, LIMITS)
    assert scan.files == {f"{deepest}kept": FileState(sha(b"a"), 1, 0o644)}
    assert compute.read_file(f"{deepest}kept") == b"a"
    with pytest.raises(ComputeError, match="too deep"):
        compute.read_file(f"{deepest}d/left-out")
    # pytest removes old temporary folders recursively, a call per level: a tree this deep left
    # behind would make a later run's clean-up fail with RecursionError.
    run(compute, "rm -rf d")
