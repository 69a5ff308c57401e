"""``python -m agentjournal``: the command line, as the ``agentjournal`` command."""

from agentjournal.infrastructure.cli import main

raise SystemExit(main())
