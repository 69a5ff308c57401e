"""Memory stores' folders on each compute that shows them (the confined host, the Docker
sandbox): at ``/mnt/memory/<slug>``, reached by the file tools and by commands, read back
by the engine without following links, and read-only from outside the tools when asked."""

from __future__ import annotations

import uuid

import pytest

from agentjournal.application.ports import ComputeError, MemoryFolders
from agentjournal.infrastructure.compute import bubblewrap

pytestmark = pytest.mark.timeout(180)


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
    assert compute.memory_files("notes", 1024) == {"deep/b.md": b"second", "c.md": b"third"}
    compute.write_file("/mnt/memory/notes/big.md", b"x" * 2000)
    assert compute.memory_files("notes", 1024)["big.md"] is None  # too large to be a memory
    compute.show_memory("notes", False, {"only.md": b"again"})  # exactly the store, nothing left over
    assert compute.memory_files("notes", 1024) == {"only.md": b"again"}


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
    assert compute.memory_files("rules", 1024) == {"rule.md": b"be kind"}
