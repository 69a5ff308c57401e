"""Telemetry, a driving adapter: sessions read from the log and sent out as OpenTelemetry
spans (:mod:`.otel`). Needs the ``otel`` extra (``pip install "agentjournal[otel]"``)."""
