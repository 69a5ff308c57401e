"""Memory stores' folders on each compute that shows them (the confined host, the Docker
sandbox): at ``/mnt/memory/<slug>``, reached by the file tools and by commands, read back
by the engine without following links, and read-only from outside the tools when asked."""

from __future__ import annotations

import uuid

import pytest

from agentjournal.application.ports import ComputeError, MemoryFolders
from agentjournal.domain.memory import MemoryQuota, MemoryQuotaExceeded
from agentjournal.infrastructure.compute import bubblewrap

pytestmark = pytest.mark.timeout(180)

QUOTA = MemoryQuota()


@pytest.fixture(params=["host", pytest.param("docker", marks=pytest.mark.docker)])
def compute(request, tmp_path):  # type: ignore[no-untyped-def]
    if request.param == "docker":
        return request.getfixturevalue("sandbox")()
    if bubblewrap.unavailable() is not None:
        pytest.skip("needs bubblewrap")
    from agentjournal.infrastructure.compute.confined import ConfinedHostCompute

    confined = ConfinedHostCompute(tmp_path / "work", base=tmp_path / "data")
    confined.attach(uuid.uuid4(), None)
    return confined


def test_a_read_write_store_is_written_by_the_tools_and_read_back(compute):
    assert isinstance(compute, MemoryFolders)
    compute.show_memory("notes", False, {"a.md": b"first", "deep/b.md": b"second"})
    assert compute.read_file("/mnt/memory/notes/deep/b.md") == b"second"
    compute.write_file("/mnt/memory/notes/c.md", b"third")
    ran = compute.execute("rm /mnt/memory/notes/a.md && ln -s /etc/passwd /mnt/memory/notes/link.md", 30)
    assert ran.exit_code == 0, ran.output
    assert compute.memory_files("notes", 1024, QUOTA) == {"deep/b.md": b"second", "c.md": b"third"}
    compute.write_file("/mnt/memory/notes/big.md", b"x" * 2000)
    assert compute.memory_files("notes", 1024, QUOTA)["big.md"] is None  # too large to be a memory
    compute.show_memory("notes", False, {"only.md": b"again"})  # exactly the store, nothing left over
    assert compute.memory_files("notes", 1024, QUOTA) == {"only.md": b"again"}


def test_a_read_only_store_cannot_be_written_whatever_the_tools_run(compute):
    compute.show_memory("rules", True, {"rule.md": b"be kind"})
    assert compute.read_file("/mnt/memory/rules/rule.md") == b"be kind"
    with pytest.raises(ComputeError):
        compute.write_file("/mnt/memory/rules/rule.md", b"be mean")
    ran = compute.execute(
        "echo x > /mnt/memory/rules/rule.md; chmod u+w /mnt/memory/rules/rule.md; "
        "rm -f /mnt/memory/rules/rule.md; touch /mnt/memory/rules/new.md; mv /mnt/memory/rules /mnt/memory/r2",
        30,
    )
    assert ran.exit_code != 0
    assert compute.memory_files("rules", 1024, QUOTA) == {"rule.md": b"be kind"}


def test_a_folder_past_the_store_bound_is_refused_before_its_files_are_read(compute):
    """The bound is on the folder as the tools left it: more files than a store holds
    memories, or more bytes in the files that could be memories than it holds together,
    is refused whole (files too large to be memories count as files, not as bytes)."""
    quota = MemoryQuota(memories=5, total_bytes=3000)
    compute.show_memory("bounded", False, {"a.md": b"a" * 1000})
    compute.write_file("/mnt/memory/bounded/big.bin", b"x" * 50_000)  # no memory: not its bytes
    compute.write_file("/mnt/memory/bounded/b.md", b"b" * 1000)
    assert compute.memory_files("bounded", 1024, quota) == {
        "a.md": b"a" * 1000, "b.md": b"b" * 1000, "big.bin": None,
    }  # fmt: skip
    compute.write_file("/mnt/memory/bounded/c.md", b"c" * 1001)  # 3,001 bytes within 1,024 each
    with pytest.raises(MemoryQuotaExceeded, match="3,000 bytes"):
        compute.memory_files("bounded", 1024, quota)
    ran = compute.execute("cd /mnt/memory/bounded && rm c.md && touch d e f", 30)
    assert ran.exit_code == 0, ran.output
    with pytest.raises(MemoryQuotaExceeded, match="more than 5 files"):
        compute.memory_files("bounded", 1024, quota)
