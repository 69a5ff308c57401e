"""Workspace snapshots on the host and in the Docker sandbox: every regular file's hash,
size and mode, the contents of what changed only, unchanged files not read again, links
and ignored names left out, big files recorded by hash and size only."""

from __future__ import annotations

import hashlib

from agentjournal.application.ports import Compute, SnapshotLimits
from agentjournal.domain import FileState, SessionConfig

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


def test_a_file_whose_time_size_and_inode_are_unchanged_is_not_read_again(either_compute):
    compute = either_compute
    run(compute, "printf 'aaaa' > old.txt && touch -d 2020-01-01 old.txt")
    first = compute.snapshot({}, LIMITS)
    # Same size, same inode, the same time put back: the snapshot trusts what it found.
    run(compute, "printf 'bbbb' 1<> old.txt && touch -d 2020-01-01 old.txt")
    assert compute.snapshot({"old.txt": sha(b"aaaa")}, LIMITS).files == first.files
    # A new time is a change, and the file is read.
    run(compute, "touch old.txt")
    assert compute.snapshot({"old.txt": sha(b"aaaa")}, LIMITS).contents == {"old.txt": b"bbbb"}
