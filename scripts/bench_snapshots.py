"""The snapshot after a tool call in a large work folder (``scripts/bench --snapshots``):
incremental, with the change journal, against the full scan the engine takes without one.

A 10,000-file work folder (100 folders of 100 files, as a repository checkout; their times
set an hour back, so the full scan may trust every unchanged file as it would a checkout
not written just now) on the compute a session without packages gets (the confined host
where bubblewrap runs, else the unconfined host). Each tool call is a command that changes
one file (``echo ... > d0/f0.txt``); after it, the compute's own snapshot (its journal
reports the one change) and a full scan of the same folder (a second set of snapshots that
has no journal: every file's ``lstat``, the changed one read) are timed, in turns that
alternate which goes first, so the machine's load weighs on both alike. Medians and p95 of
``TOOL_CALLS`` calls, in milliseconds; the journal's periodic full scan falls among them.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from agentjournal.application.ports import SnapshotLimits, WorkspaceScan
from agentjournal.domain import SessionConfig
from agentjournal.infrastructure.compute import bubblewrap
from agentjournal.infrastructure.compute.confined import ConfinedHostCompute
from agentjournal.infrastructure.compute.folder_scans import FolderScans
from agentjournal.infrastructure.compute.host import HostCompute

FOLDERS, FILES_PER_FOLDER = 100, 100
TOOL_CALLS = 40
LIMITS = SnapshotLimits(ignore=SessionConfig("m", "s", "n", ()).snapshot_ignore, max_file_bytes=1 << 20)


def run(
    folders: int = FOLDERS, files_per_folder: int = FILES_PER_FOLDER, tool_calls: int = TOOL_CALLS
) -> dict[str, object]:
    """Both snapshots' times after each of ``tool_calls`` one-file changes in a work folder of
    ``folders`` folders of ``files_per_folder`` files, in milliseconds."""
    scratch = Path(tempfile.mkdtemp())
    try:
        root = scratch / "work"
        compute = _compute(root)
        compute.attach(uuid.uuid4(), None)
        _fill(root, folders, files_per_folder)
        full = FolderScans(journals=lambda: None)
        sides: list[tuple[Callable[[dict[str, str]], WorkspaceScan], dict[str, str], list[float]]] = [
            (lambda known: compute.snapshot(known, LIMITS), {}, []),
            (lambda known: full.snapshot(root, known, LIMITS), {}, []),
        ]
        for take, known, _ in sides:  # the first snapshot of each: a full scan, untimed
            known.update({path: state.hash for path, state in take(known).files.items()})
        commands: list[float] = []
        for n in range(tool_calls):
            started = time.perf_counter()
            compute.execute(f"echo change {n} > d0/f0.txt", 60)
            commands.append(_since(started))
            for take, known, times in sides if n % 2 == 0 else reversed(sides):
                started = time.perf_counter()
                scan = take(known)
                times.append(_since(started))
                known.update({path: state.hash for path, state in scan.files.items()})
        incremental, scanned = sides[0][2], sides[1][2]
        return {
            "compute": compute.kind,
            "files": folders * files_per_folder,
            "tool_calls": tool_calls,
            "command": _summary(commands),
            "snapshot_with_journal": _summary(incremental),
            "snapshot_full_scan": _summary(scanned),
            "journal_snapshots_that_were_full_scans": compute.scans.full_scans - 1,
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _fill(root: Path, folders: int, files_per_folder: int) -> None:
    """Write the files into ``root`` as its owner's (whom the tools run as)."""
    owner = root.stat()
    an_hour_ago = time.time() - 3600
    for folder in range(folders):
        for file in range(files_per_folder):
            n = folder * files_per_folder + file
            path = root / f"d{folder}" / f"f{n}.txt"
            if not path.parent.is_dir():
                path.parent.mkdir()
                os.chown(path.parent, owner.st_uid, owner.st_gid)
            path.write_text(f"file {n}\n" * 20)
            os.chown(path, owner.st_uid, owner.st_gid)
            os.utime(path, (an_hour_ago, an_hour_ago))


def _compute(root: Path) -> ConfinedHostCompute | HostCompute:
    """The confined host where bubblewrap runs, else the unconfined host, on folder ``root``."""
    if bubblewrap.unavailable() is None:
        return ConfinedHostCompute(root)
    return HostCompute(root)


def _since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median": round(statistics.median(ordered), 2),
        "p95": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 2),
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(*map(int, sys.argv[1:])), indent=2))
