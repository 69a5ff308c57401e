"""What a server holds when it starts is frozen out of the cyclic collector's reach (so a
full collection does not scan litellm's tables again and again), after the garbage of its
start was collected: checked in a new interpreter, whose collector this test owns."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(60)

PROBE = textwrap.dedent(
    """
    import gc, weakref

    from agentjournal.infrastructure.server.serve import freeze_start_heap

    class Node:
        pass

    kept, cycle = [Node()], Node()
    cycle.self = cycle
    collected = []
    weakref.finalize(cycle, collected.append, True)
    del cycle
    gc.disable()  # only freeze_start_heap collects
    freeze_start_heap()
    made_later = [Node()]
    tracked = {id(o) for o in gc.get_objects()}
    print(collected == [True], gc.get_freeze_count() > 0, id(kept) not in tracked, id(made_later) in tracked)
    """
)


def test_the_start_heap_is_collected_then_frozen():
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=50, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True", "True", "True"]
