"""The ``agentjournal`` command line (:mod:`.main`), a driving adapter over the application."""
