"""Adapters, grouped by the port each serves.

Driving adapters call the application: ``cli`` (the ``agentjournal`` command) and ``server``
(the Managed Agents API, its extensions and the session browser). Driven adapters implement
the application's ports: ``compute`` (where tools run: the host, the Docker sandbox, and the
helpers both run inside), ``stores`` (eventsourcing's SQLite and PostgreSQL recorders, the
typed mapper and transcoder, read-model tables, blobs) and ``models`` (litellm, and the
scripted OpenAI-compatible server the demo and the tests talk to).

Heavy libraries (litellm, docker) are imported inside the adapters that use them, so
importing this package stays cheap.
"""
