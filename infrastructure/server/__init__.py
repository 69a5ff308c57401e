"""The cloud-style HTTP API: Anthropic's Claude Managed Agents, served from this machine.

A driving adapter, like the CLI: it turns HTTP requests into calls of the
application services and the log's events into the API's JSON. Code written for
the cloud API (the official ``anthropic`` SDK, PraisonAI's hosted backend) runs
against it by changing only its base URL.

* :mod:`.app` assembles the Starlette application and what it shares.
* :mod:`.auth`, :mod:`.errors`, :mod:`.bodies`, :mod:`.ids`: keys, Anthropic's error
  shape, bounded and checked request bodies, the ids on the wire.
* :mod:`.sessions`, :mod:`.events`, :mod:`.agents`, :mod:`.environments`: the resources.
* :mod:`.runner`: turns run in the background; :mod:`.wire` shows a session's log as
  the API's events; :mod:`.extensions` serves the log's own powers under ``/x-agentjournal``.
* :mod:`.serve`: the uvicorn process.
"""

from agentjournal.infrastructure.server.app import ServerSettings, create_app

__all__ = ["ServerSettings", "create_app"]
