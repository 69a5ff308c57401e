"""Session resources measured (``scripts/bench --mounts``): what a session starts with costs
against the same bytes copied or cloned without a log, and what a tool call costs in a
session that holds a large checkout.

* **a 100 MB upload**: uploaded in parts, mounted into a new session and given to its first
  sandbox, against ``cp`` of the same file;
* **a 10,000-file repository**, served over git's dumb HTTP transport on the loopback:
  cloned and mounted into a new session (recorded, its contents in the blob store), against
  ``git clone`` of it; then the first sandbox given that checkout (written from the blob
  store and snapshotted);
* **a tool call in that session**: a command that changes one file, run on the session's
  compute (the confined host where bubblewrap runs, else the unconfined host), and the
  work folder's snapshot that follows it, as a turn records them (median and p95 of 20).
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from agentjournal.application.catalog import Catalog
from agentjournal.application.ports import Compute
from agentjournal.application.resources import SessionResources
from agentjournal.application.service import SessionService
from agentjournal.application.uploads import Uploads
from agentjournal.application.workspace import restore_into_new_sandbox, take_snapshot
from agentjournal.domain import SessionConfig

MOUNTED_FILE_BYTES = 100 * 1024 * 1024
REPOSITORY_FILES = 10_000
TOOL_CALLS = 20


def run(env: dict[str, str], config: SessionConfig) -> dict[str, object]:
    """Every measurement above, in milliseconds, on the store ``env`` names; sessions are
    made with ``config``."""
    service = SessionService(env)
    uploads = Uploads(Catalog(service))
    resources = SessionResources(service, uploads)
    scratch = Path(tempfile.mkdtemp())
    results: dict[str, object] = {"compute": _compute(scratch).kind}
    try:
        source = scratch / "big.bin"
        source.write_bytes(os.urandom(MOUNTED_FILE_BYTES))
        results["cp_100mb"] = _milliseconds(lambda: shutil.copy(source, scratch / "copy.bin"))

        def upload_and_mount() -> None:
            upload = uploads.begin()
            with source.open("rb") as file:
                while part := file.read(1024 * 1024):
                    upload.write(part)
            stored = uploads.finish(upload, "big.bin", "application/octet-stream")
            session = service.create_session(config)
            resources.mount(session, resources.prepare_file(stored.id, "/mnt/session/uploads/big.bin"), None)
            compute = _compute(scratch)
            loaded = service.get_session(session)
            loaded.attach_compute(compute.attach(session, None))
            restore_into_new_sandbox(loaded, compute, service.blobs)
            service.save(loaded)

        results["mount_100mb_upload"] = _milliseconds(upload_and_mount)
        url, stop = _served_repository(scratch)
        try:
            results["git_clone_10k_files"] = _milliseconds(
                lambda: subprocess.run(["git", "clone", "-q", url, str(scratch / "plain")], check=True)
            )
            holder: dict[str, uuid.UUID] = {}

            def clone_and_mount() -> None:
                session = service.create_session(config)
                resources.mount(session, resources.prepare_repository(url, "/workspace/r"), None)
                holder["session"] = session

            results["mount_10k_file_repository"] = _milliseconds(clone_and_mount)
        finally:
            stop()
        session = service.get_session(holder["session"])
        compute = _compute(scratch)
        session.attach_compute(compute.attach(session.id, None))
        results["first_sandbox_given_the_checkout"] = _milliseconds(
            lambda: restore_into_new_sandbox(session, compute, service.blobs)
        )
        service.save(session)
        commands: list[float] = []
        snapshots: list[float] = []
        for n in range(TOOL_CALLS):
            commands.append(_milliseconds(lambda n=n: compute.execute(f"echo change {n} > r/d0/f0.txt", 60)))
            snapshots.append(_milliseconds(
                lambda: (take_snapshot(session, compute, service.blobs, "call"), service.save(session))
            ))  # fmt: skip
        results["tool_call_command_in_checkout"] = _summary(commands)
        results["tool_call_snapshot_in_checkout"] = _summary(snapshots)
        return results
    finally:
        service.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _compute(scratch: Path) -> Compute:
    """The compute a session without packages gets: the confined host where bubblewrap
    runs, else the unconfined host (said in the results)."""
    from agentjournal.infrastructure.compute import bubblewrap
    from agentjournal.infrastructure.compute.confined import ConfinedHostCompute
    from agentjournal.infrastructure.compute.host import HostCompute

    if bubblewrap.unavailable() is None:
        return ConfinedHostCompute(base=str(scratch / "sandboxes"))
    return HostCompute(base=str(scratch / "sandboxes"))


def _served_repository(scratch: Path) -> tuple[str, Callable[[], None]]:
    """A bare repository of :data:`REPOSITORY_FILES` files served over git's dumb HTTP
    transport on the loopback: its URL, and what stops the server."""
    work = scratch / "repo"
    for n in range(REPOSITORY_FILES):
        path = work / f"d{n // 100}" / f"f{n}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"file {n}\n" * 20)
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.org"]
    subprocess.run([*git, "init", "-q", str(work)], check=True)
    subprocess.run([*git, "-C", str(work), "add", "."], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-qm", "all"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(scratch / "served/r.git")], check=True)
    subprocess.run(["git", "-C", str(scratch / "served/r.git"), "update-server-info"], check=True)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(scratch / "served"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_address[1]}/r.git", stop


def _milliseconds(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return round((time.perf_counter() - started) * 1000, 1)


def _summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {"median": round(statistics.median(ordered), 1),
            "p95": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 1)}  # fmt: skip
