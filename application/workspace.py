"""The work folder as part of a session's history.

After each tool call that can change files, the service takes a snapshot through the
compute (:meth:`~agentjournal.application.ports.Compute.snapshot`): the compute lists
every file with its hash, reading only what changed, and hands back the contents the
log does not know yet. Those go into the blob store first, then the session records
what changed (``WorkspaceChanged``); so every file the log names as stored can be read
back, at any version, after the sandbox is gone.

A compute's answer is checked before anything is kept: its paths must be plain
relative paths, and each content must hash to what its file claims, since the sandbox
that produced them runs what the model wrote.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Mapping

import msgspec

from agentjournal.application.errors import FileNotRecorded
from agentjournal.application.ports import (
    BlobStore,
    Compute,
    ComputeError,
    FileContents,
    SnapshotLimits,
    WorkspaceScan,
)
from agentjournal.domain import FileState, Session


class Files(Mapping[str, FileState]):
    """A session's work folder as it was right after one event: a read-only mapping of
    path (relative to the work folder) to :class:`~agentjournal.domain.FileState`, whose
    contents :meth:`read` takes from the blob store, so they are there after the sandbox
    is gone."""

    def __init__(self, files: Mapping[str, FileState], version: int, blobs: BlobStore) -> None:
        self._files = dict(sorted(files.items()))
        self.version = version
        """The event the files are as of."""
        self._blobs = blobs

    def __getitem__(self, path: str) -> FileState:
        return self._files[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def read(self, path: str) -> bytes:
        """The contents of the file at ``path``: ``FileNotRecorded`` when there was none, or
        it was over a snapshot size cap."""
        state = self._files.get(path.strip("/"))
        if state is None:
            raise FileNotRecorded(path, self.version)
        if not state.stored:
            raise FileNotRecorded(
                path, self.version, f"over a snapshot size cap ({state.size} bytes): hash and size only"
            )
        return self._blobs.get(state.hash)

    def under(self, folder: str) -> list[str]:
        """The paths of the files below ``folder`` (``""`` or ``.`` for all), in order."""
        prefix = folder.strip("/").removeprefix(".").strip("/")
        return [path for path in self._files if not prefix or path.startswith(prefix + "/")]


def snapshot_limits(session: Session) -> SnapshotLimits:
    """What the session's recorded config leaves out of its snapshots."""
    return SnapshotLimits(
        ignore=session.config.snapshot_ignore, max_file_bytes=session.config.snapshot_file_bytes
    )


def take_snapshot(session: Session, compute: Compute, blobs: BlobStore, tool_call_id: str) -> int:
    """Snapshot the session's work folder after call ``tool_call_id``: store the contents
    the log lacks, and record what changed on ``session`` (the caller saves it). Returns
    how many bytes of contents were newly stored."""
    known = {path: state.hash for path, state in session.files.items()}
    scan = within_budget(
        compute.snapshot(known, snapshot_limits(session)), session.config.snapshot_total_bytes, known.keys()
    )
    stored = blobs.add(scan.contents.values())
    session.record_workspace(scan.files, tool_call_id)
    return stored


def within_budget(scan: WorkspaceScan, total: int, recorded: Collection[str] = ()) -> WorkspaceScan:
    """``scan`` checked (:func:`check_scan`; the paths ``recorded`` already were), with the
    contents it brings kept only while the work folder's kept contents stay within ``total``
    bytes: files beyond it, in path order, are marked as kept by hash and size only, and
    their contents dropped."""
    check_scan(scan, recorded)
    budget = total - sum(s.size for p, s in scan.files.items() if s.stored and p not in scan.contents)
    files, contents = dict(scan.files), {}
    for path in sorted(scan.contents):
        data = scan.contents[path]
        if len(data) <= budget:
            contents[path] = data
            budget -= len(data)
        else:
            files[path] = msgspec.structs.replace(files[path], stored=False)
    return WorkspaceScan(files=files, contents=contents)


def restore_into_new_sandbox(session: Session, compute: Compute, blobs: BlobStore) -> None:
    """Give a sandbox the session has just been attached to the files its log says it
    has (a fork's files as of its fork point, or a session's own when its sandbox was
    lost), from the blob store, then record what the folder holds.

    Only an empty work folder is filled: a folder that already holds files (a
    ``working_dir`` shared with the parent) is never overwritten, and what it holds is
    recorded instead. Files kept by hash only (over the size cap) cannot be restored;
    the record then shows them gone."""
    if not session.files:
        return
    if not compute.snapshot({}, snapshot_limits(session)).files:
        compute.restore(
            [
                FileContents(path, state.mode, blobs.get(state.hash))
                for path, state in session.files.items()
                if state.stored
            ]
        )
    take_snapshot(session, compute, blobs, "")


def roll_back(
    session: Session, compute: Compute, blobs: BlobStore, version: int, target: Mapping[str, FileState]
) -> None:
    """Make the session's work folder hold the files ``target`` (its manifest as of event
    ``version``) and record the result as a change restored from that version. What the
    folder holds now is recorded first, so the restore's record shows exactly what it
    undid. Files kept by hash only cannot be brought back; they stay as they are."""
    take_snapshot(session, compute, blobs, "")
    current = session.files
    compute.restore(
        [
            FileContents(path, state.mode, blobs.get(state.hash))
            for path, state in target.items()
            if state.stored and current.get(path) != state
        ],
        remove=[path for path in current if path not in target],
    )
    known = {path: state.hash for path, state in current.items()}
    scan = within_budget(
        compute.snapshot(known, snapshot_limits(session)), session.config.snapshot_total_bytes
    )
    blobs.add(scan.contents.values())
    session.record_workspace(scan.files, "", restored_from=version)


def check_scan(scan: WorkspaceScan, recorded: Collection[str] = ()) -> None:
    """Refuse (``ComputeError``) a scan whose paths are not plain relative paths, or whose
    contents do not hash to what their files claim. Paths in ``recorded`` (the manifest's,
    checked when they were recorded) are not checked again, so a scan of a large folder
    where little changed checks little."""
    for path in scan.files.keys() - recorded:
        check_relative(path)
    for path, data in scan.contents.items():
        state = scan.files.get(path)
        if state is None or not state.stored or hashlib.sha256(data).hexdigest() != state.hash:
            raise ComputeError(f"the snapshot's contents of {path!r} do not match its listing")


def check_relative(path: str) -> None:
    """A path inside the work folder, as manifests hold them: ``a/b.txt``, never absolute,
    never through ``..`` or ``.``, no empty parts, no NUL."""
    parts = path.split("/")
    if not path or "\x00" in path or any(part in ("", ".", "..") for part in parts):
        raise ComputeError(f"not a path inside the work folder: {path!r}")
