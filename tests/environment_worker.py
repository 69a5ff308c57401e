"""Anthropic's own ``EnvironmentWorker``, unmodified, as a process of its own: what a
customer runs on a machine of theirs. ``python -m tests.environment_worker URL ENV KEY
FOLDER NAME [MAX_IDLE]`` serves the environment's work queue until it is stopped,
running the sessions' tools in FOLDER."""

from __future__ import annotations

import asyncio
import logging
import sys

import anthropic
from anthropic.lib.environments import EnvironmentWorker


async def serve(url: str, environment_id: str, key: str, folder: str, name: str, max_idle: float) -> None:
    client = anthropic.AsyncAnthropic(api_key="unused-by-the-worker", base_url=url)
    worker = EnvironmentWorker(
        client, environment_id=environment_id, environment_key=key, workdir=folder, worker_id=name,
        max_idle=max_idle,
    )  # fmt: skip
    print("worker ready", flush=True)
    await worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    url, environment_id, key, folder, name = sys.argv[1:6]
    max_idle = float(sys.argv[6]) if len(sys.argv) > 6 else 60.0
    asyncio.run(serve(url, environment_id, key, folder, name, max_idle))
