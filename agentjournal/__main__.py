"""``python -m agentjournal``: the command line, as the ``agentjournal`` command."""

from agentjournal.infrastructure.cli.main import main

raise SystemExit(main())
