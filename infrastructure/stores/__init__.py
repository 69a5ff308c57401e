"""The store adapters: eventsourcing's SQLite (:mod:`.sqlite`) and PostgreSQL (:mod:`.postgres`)
recorders with the typed event :mod:`.mapper` and the msgspec :mod:`.transcoder`, the read-model
tables (:mod:`.readmodel`) and the content-addressed blob store (:mod:`.blobs`)."""
