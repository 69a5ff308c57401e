"""The confined host's change journal: after what a hostile model does in its sandbox, the
incremental snapshot equals a full scan of the work folder, and a journal that cannot be
trusted (an overflow, watches run out, a new process) gives way to a full scan. Real
bubblewrap, real files, the kernel's inotify."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from inotify_simple import Event, INotify, flags

from agentjournal.application.ports import SnapshotLimits, WorkspaceScan
from agentjournal.domain import SessionConfig
from agentjournal.infrastructure.compute import bubblewrap, change_journal
from agentjournal.infrastructure.compute.change_journal import MAX_OPEN_JOURNALS, ChangeJournal
from agentjournal.infrastructure.compute.confined import ConfinedHostCompute
from agentjournal.infrastructure.compute.folder_scans import FULL_SCAN_EVERY, FolderScans

pytestmark = pytest.mark.skipif(bubblewrap.unavailable() is not None, reason="bubblewrap cannot run here")

LIMITS = SnapshotLimits(ignore=SessionConfig("m", "s", "n", ()).snapshot_ignore, max_file_bytes=100_000)
CHECKOUT = "for d in $(seq 30); do mkdir -p src/d$d/inner; for f in $(seq 10); do echo $d $f > src/d$d/f$f.txt; done; echo i > src/d$d/inner/i.txt; done"
UNREPORTED_WRITE = "mkdir -p node_modules && ln src/d1/f1.txt node_modules/f && echo Z >> node_modules/f"
"""Writes to a file through a name made for it in a folder the journal does not watch (an
ignored one): no event reports the file's own name."""


class Session:
    """A confined compute on a work folder of its own, and the known hashes a turn keeps."""

    def __init__(self, root: Path, scans: FolderScans | None = None) -> None:
        self.root = root
        self.scans = scans or FolderScans()
        self.compute = ConfinedHostCompute(root, scans=self.scans)
        self.compute.attach(uuid.uuid4(), None)
        self.known: dict[str, str] = {}

    def run(self, script: str) -> None:
        done = self.compute.execute(script, 60)
        assert done.exit_code == 0, done.output

    def snapshot(self) -> WorkspaceScan:
        scan = self.compute.snapshot(self.known, LIMITS)
        assert all(
            hashlib.sha256(data).hexdigest() == scan.files[path].hash for path, data in scan.contents.items()
        )
        self.known = {path: state.hash for path, state in scan.files.items()}
        return scan

    def full_scan(self) -> WorkspaceScan:
        """The folder as a new engine's first snapshot finds it, reading every file."""
        return FolderScans(journals=lambda: None).snapshot(self.root, {}, LIMITS)


@pytest.fixture
def session(tmp_path: Path) -> Session:
    made = Session(tmp_path / "work")
    made.run(CHECKOUT)
    made.snapshot()
    assert made.scans.full_scans == 1
    return made


HOSTILE_STEPS = [
    "mkdir -p new/a/b/c && echo 1 > new/a/b/c/x && echo 2 > new/a/y && mkdir -p new/a/b/d/e",
    "mv src/d2 node_modules_away && mkdir -p node_modules && mv node_modules_away node_modules/d2",
    "mv node_modules/d2 back && echo more > back/inner/j.txt",
    "mv src/d3 /tmp/out && mkdir -p /tmp/in/deep && echo fresh > /tmp/in/deep/f && mv /tmp/in src/d3",
    "rm -rf src/d4 new/a/b",
    "mkdir empty && mv -T src/d5 empty && mv src/d6/f1.txt src/d6/f2.txt",
    "printf 'X' > src/d7/f1.txt && touch -d 2020-01-01 src/d7/f1.txt",
    "printf 'Y' 1<> src/d7/f1.txt && touch -d 2020-01-01 src/d7/f1.txt",
    "ln src/d8/f1.txt twin.txt && ln -s src/d8 folder-link && ln -s /etc/passwd outside && echo via >> twin.txt",
    "echo again >> src/d8/f1.txt && chmod 600 src/d9/f1.txt && rm src/d9/f2.txt && mkdir src/d9/f2.txt",
    "for i in $(seq 2000); do mkdir -p many/$i/x; done && for i in $(seq 0 100 2000); do echo $i > many/$i/x/f; done",
    "mv many later && rm -rf later/1* && mv src src2 && mkdir src && mv src2 src/old",
    "mkdir -p a/b && mv src a/b/c && echo z > a/b/c/old/d1/f3.txt && mv a/b/c/old /tmp/gone",
    # A write through a shared mapping sends no event, but closing what was opened to write does.
    "python3 -c \"import mmap, os; fd = os.open('back/f1.txt', os.O_RDWR); m = mmap.mmap(fd, 0); "
    "os.close(fd); m[0:1] = b'Q'; m.flush()\"",
    "deep=$(printf 'n/%.0s' $(seq 300)) && mkdir -p $deep && echo deep > ${deep}x && echo top > n/n/x",
]


def test_an_incremental_snapshot_equals_a_full_scan_after_what_a_hostile_model_does(session: Session):
    for step in HOSTILE_STEPS:
        session.run(step)
        assert session.snapshot().files == session.full_scan().files, step
    assert session.scans.full_scans == 1, "every snapshot after the first was incremental"


def test_a_move_out_of_and_back_into_the_work_folder_on_the_host_is_seen(session: Session, tmp_path: Path):
    os.rename(session.root / "src" / "d1", tmp_path / "away")
    assert session.snapshot().files == session.full_scan().files
    (tmp_path / "away" / "f1.txt").write_text("changed while away\n")
    os.rename(tmp_path / "away", session.root / "d1-back")
    scan = session.snapshot()
    assert scan.files == session.full_scan().files
    assert scan.contents["d1-back/f1.txt"] == b"changed while away\n"
    assert session.scans.full_scans == 1


def test_a_write_no_event_reports_is_recorded_by_the_periodic_full_scan(session: Session):
    before = session.snapshot().files["src/d1/f1.txt"]
    session.run(UNREPORTED_WRITE)
    # The journal saw nothing: the file is not read again, its old hash stands...
    assert session.snapshot().files["src/d1/f1.txt"] == before
    # ...until the full scan the journal's safety net takes every FULL_SCAN_EVERY snapshots.
    found = [session.snapshot().contents for _ in range(FULL_SCAN_EVERY)]
    assert [contents for contents in found if contents] == [{"src/d1/f1.txt": b"1 1\nZ\n"}]
    assert session.scans.full_scans == 2


def test_more_changes_than_the_queue_holds_give_a_full_scan(session: Session):
    queued = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    if queued > 100_000:
        pytest.skip(f"the kernel queues {queued} events: too many to overflow in a test")
    session.run(f"cd src/d1 && seq 1 {queued} | xargs touch")  # a creation, a close and more each
    assert session.snapshot().files == session.full_scan().files
    assert session.scans.full_scans == 2


class OverflowingJournal(ChangeJournal):
    """A real journal whose queue, when told, reports an overflow as the kernel does."""

    overflow = False

    def _read(self) -> list[Event]:
        events = super()._read()
        if self.overflow:
            events.append(Event(wd=-1, mask=flags.Q_OVERFLOW, cookie=0, name=""))
        return events


def journals_of(make: Callable[[], ChangeJournal], made: list[ChangeJournal]) -> Callable[[], ChangeJournal]:
    def opened() -> ChangeJournal:
        made.append(make())
        return made[-1]

    return opened


def test_an_overflowing_queue_gives_a_full_scan(tmp_path: Path):
    made: list[ChangeJournal] = []
    session = Session(
        tmp_path / "work", FolderScans(journals_of(lambda: OverflowingJournal(INotify()), made))
    )
    session.run(CHECKOUT)
    session.snapshot()
    session.run(UNREPORTED_WRITE)
    assert "src/d1/f1.txt" not in session.snapshot().contents  # no event: not seen yet
    assert isinstance(made[-1], OverflowingJournal)
    made[-1].overflow = True
    scan = session.snapshot()
    assert scan.contents == {"src/d1/f1.txt": b"1 1\nZ\n"}
    assert scan.files == session.full_scan().files
    assert session.scans.full_scans == 2 and len(made) == 2  # a new journal, watching again
    session.run("echo after > src/d2/f2.txt")
    assert session.snapshot().contents == {"src/d2/f2.txt": b"after\n"}
    assert session.scans.full_scans == 2


def test_a_folder_with_more_folders_than_a_journal_may_watch_is_scanned_whole(tmp_path: Path):
    session = Session(tmp_path / "work", FolderScans(lambda: ChangeJournal(INotify(), max_watches=40)))
    session.run(CHECKOUT)  # 62 folders with the top one: the journal gives up
    session.snapshot()
    session.run("echo changed > src/d1/f1.txt")
    assert session.snapshot().contents == {"src/d1/f1.txt": b"changed\n"}
    assert session.scans.full_scans == 2
    session.run("rm -rf src/d1*")  # 40 folders left: the journal holds
    session.snapshot()
    session.run("echo changed > src/d4/f1.txt")
    assert session.snapshot().contents == {"src/d4/f1.txt": b"changed\n"}
    assert session.scans.full_scans == 3
    session.run("mkdir -p more/deeper && echo m > more/deeper/m")  # past the journal's watches
    assert session.snapshot().contents == {"more/deeper/m": b"m\n"}
    session.run("echo changed again > src/d4/f1.txt")
    assert session.snapshot().contents == {"src/d4/f1.txt": b"changed again\n"}
    assert session.scans.full_scans == 4


def test_a_restarted_engine_starts_with_a_full_scan(session: Session):
    session.run(UNREPORTED_WRITE)
    assert "src/d1/f1.txt" not in session.snapshot().contents
    restarted = Session(session.root)  # a new process: a new compute on the same folder
    restarted.known = session.known
    scan = restarted.snapshot()
    assert scan.contents == {"src/d1/f1.txt": b"1 1\nZ\n"}
    assert restarted.scans.full_scans == 1


def test_a_process_holds_a_bounded_number_of_journals_open(monkeypatch: pytest.MonkeyPatch):
    # A count of its own, so journals other tests left to the collector do not weigh here.
    monkeypatch.setattr(change_journal, "_open_journals", threading.BoundedSemaphore(MAX_OPEN_JOURNALS))
    opened = [ChangeJournal.open() for _ in range(MAX_OPEN_JOURNALS)]
    try:
        assert None not in opened
        assert ChangeJournal.open() is None  # the user's inotify instances are left to others
        closed = opened.pop()
        assert closed is not None
        closed.close()
        closed.close()  # once is enough
        again = ChangeJournal.open()
        assert again is not None
        opened.append(again)
        del again
        opened.pop()  # collected unclosed: counted no more
        assert ChangeJournal.open() is not None
    finally:
        for journal in opened:
            if journal is not None:
                journal.close()
