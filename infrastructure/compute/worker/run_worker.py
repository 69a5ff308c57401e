"""Start Anthropic's ``EnvironmentWorker`` from the container's environment: the server
(``ANTHROPIC_BASE_URL``), the environment (``ANTHROPIC_ENVIRONMENT_ID``) and its worker key
(``ANTHROPIC_ENVIRONMENT_KEY``); ``WORKER_ID`` names the worker (default: the host name).
The tools run in ``/workspace``. Only the standard library and the SDK are used."""

import asyncio
import logging
import os
import socket
import sys

import anthropic
from anthropic.lib.environments import EnvironmentWorker


async def main() -> None:
    client = anthropic.AsyncAnthropic(
        api_key="unused-by-the-worker", base_url=os.environ["ANTHROPIC_BASE_URL"]
    )
    worker = EnvironmentWorker(
        client,
        environment_id=os.environ["ANTHROPIC_ENVIRONMENT_ID"],
        environment_key=os.environ["ANTHROPIC_ENVIRONMENT_KEY"],
        workdir=os.environ.get("WORKER_WORKDIR", "/workspace"),
        worker_id=os.environ.get("WORKER_ID") or socket.gethostname(),
        max_idle=float(os.environ.get("WORKER_MAX_IDLE", "60")),
    )
    print("worker ready", flush=True)
    await worker.run()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    asyncio.run(main())
