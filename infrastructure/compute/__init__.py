"""The ``Compute`` port's adapters: where a session's tools run.

:mod:`.host` runs them on this machine in the session's work folder, :mod:`.docker_sandbox` in a
hardened container. Both run the same helpers (:mod:`.sandbox_files`, :mod:`.sandbox_fetch`,
:mod:`.sandbox_snapshot`) as separate processes, speaking :mod:`.sandbox_protocol`, so what a tool
may touch is decided by a process the model does not control.
"""
